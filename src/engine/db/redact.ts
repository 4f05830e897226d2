// Connection URLs carry passwords; nothing the engine logs, reports or throws may contain one.

/** The URL with its password replaced by "***" (and unparseable input hidden entirely). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass|secret|token|key/i.test(key)) parsed.searchParams.set(key, '***');
    }
    return parsed.toString();
  } catch {
    return '<unparseable connection URL>';
  }
}

/** Removes every occurrence of each secret (and of its URL-encoded form) from a text. */
export function redactSecrets(text: string, secrets: Iterable<string>): string {
  let result = text;
  for (const secret of secrets) {
    if (secret.length < 4) continue; // too short to find without mangling the text around it
    for (const form of new Set([secret, encodeURIComponent(secret)])) result = result.replaceAll(form, '***');
  }
  return result;
}

/** The password and the whole URL of each connection URL: what redactSecrets must hide. */
export function secretsOfUrls(urls: Iterable<string>): string[] {
  const secrets: string[] = [];
  for (const url of urls) {
    secrets.push(url);
    try {
      const password = decodeURIComponent(new URL(url).password);
      if (password) secrets.push(password);
    } catch {
      // not a URL: the whole string is already listed
    }
  }
  return secrets;
}

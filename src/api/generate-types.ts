// Turns the schema into TypeScript declarations (types.generated.ts): one interface per named
// object, string unions for enums, optional properties where the schema does not require them.
import type { SchemaNode } from './schema-builder.ts';

const header = (source: string): string => `// Generated from ${source} by \`npm run generate\`. Do not edit.\n`;

function docComment(description: string, indent: string, defaultValue: unknown): string {
  const text = defaultValue === undefined ? description : `${description} Default: ${JSON.stringify(defaultValue)}.`;
  if (text === '') return '';
  return `${indent}/** ${text.replaceAll('*/', '*\\/')} */\n`;
}

function propertyName(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? name : JSON.stringify(name);
}

export function generateTypes(root: SchemaNode, source = 'src/api/datamigration-schema.ts'): string {
  const declarations = new Map<string, string>();
  const imports = new Set<string>();

  const typeOf = (node: SchemaNode): string => (node.nullable ? `${baseTypeOf(node)} | null` : baseTypeOf(node));

  const baseTypeOf = (node: SchemaNode): string => {
    if (node.tsType) {
      imports.add(node.tsType);
      return node.tsType;
    }
    if (node['x-kubernetes-int-or-string']) return 'number | string';
    if (node.enum) return node.enum.map((value) => JSON.stringify(value)).join(' | ');
    switch (node.type) {
      case 'string': return 'string';
      case 'integer': return 'number';
      case 'boolean': return 'boolean';
      case 'array': {
        if (!node.items) throw new Error('array without items');
        const item = typeOf(node.items);
        return item.includes('|') ? `(${item})[]` : `${item}[]`;
      }
      case 'object': {
        if (node.typeName) return declare(node, node.typeName);
        if (node.additionalProperties) return `Record<string, ${typeOf(node.additionalProperties)}>`;
        return 'Record<string, unknown>';
      }
      default: return 'unknown';
    }
  };

  const declare = (node: SchemaNode, name: string): string => {
    const requiredNames = new Set(node.required ?? []);
    let body = '';
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      body += docComment(child.description, '  ', child.default);
      body += `  ${propertyName(key)}${requiredNames.has(key) ? '' : '?'}: ${typeOf(child)};\n`;
    }
    const text = `${docComment(node.description, '', undefined)}export interface ${name} {\n${body}}\n`;
    const existing = declarations.get(name);
    // One name may be reused (source and target are both a DatabaseEndpoint) only for one shape.
    if (existing !== undefined && stripComments(existing) !== stripComments(text)) throw new Error(`two different shapes are named ${name}`);
    if (existing === undefined) declarations.set(name, text);
    return name;
  };

  if (!root.typeName) throw new Error('the root schema needs a typeName');
  declare(root, root.typeName);
  const importLine = imports.size > 0 ? `import type { ${[...imports].sort().join(', ')} } from '@kubernetes/client-node';\n\n` : '';
  return header(source) + importLine + [...declarations.values()].reverse().join('\n');
}

function stripComments(text: string): string {
  return text.replace(/^\s*\/\*\*.*\*\/\n/gm, '');
}

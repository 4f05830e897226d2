#!/usr/bin/env bash
# End to end on a kind cluster, the way a user installs it: builds the image, loads it into kind,
# installs the Helm chart, deploys sample databases (PostgreSQL 12 and 16, MySQL 8.4: official
# images, plain Deployments and Services in namespace "databases"), seeds them, applies
# config/samples/pg-to-pg-bigbang.yaml (adapted: the sample databases have no TLS) and a small
# MySQL -> PostgreSQL migration, waits for status.phase=Succeeded, checks the copied rows and
# prints the status.
#
# Needs docker, kind and kubectl on PATH; helm too, or Go to build it (scripts/build-tools.sh).
# Environment:
#   KIND_CLUSTER   cluster name (default dmo-e2e; an existing cluster of that name is reused)
#   KEEP_CLUSTER=1 keep a cluster this script created (default: deleted at the end)
#   IMAGE          image reference to build and load (default datamigration-operator:kind-e2e)
#   TIMEOUT        how long to wait for each migration (default 10m)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cluster=${KIND_CLUSTER:-dmo-e2e}
image=${IMAGE:-datamigration-operator:kind-e2e}
timeout=${TIMEOUT:-10m}
release=datamigration-operator
operator_ns=datamigration-system
db_ns=databases
app_ns=shop

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'kind-e2e: %s\n' "$*" >&2; exit 1; }

for command in docker kind kubectl; do
  command -v "$command" >/dev/null || die "$command is required on PATH"
done
if command -v helm >/dev/null; then
  helm=$(command -v helm)
else
  helm="$(bash "$root/scripts/build-tools.sh")/helm"
fi

created=false
context="kind-$cluster"
kc() { kubectl --context "$context" "$@"; }

diagnose() {
  log "diagnostics"
  kc get datamigrations,jobs,pods --all-namespaces -o wide || true
  kc -n "$operator_ns" logs "deployment/$release" --tail=200 || true
  kc -n "$app_ns" get events --sort-by=.lastTimestamp || true
}

finish() {
  local status=$?
  if (( status != 0 )); then
    diagnose
  fi
  if [[ $created == true && ${KEEP_CLUSTER:-} != 1 ]]; then
    log "deleting kind cluster $cluster (KEEP_CLUSTER=1 keeps it)"
    kind delete cluster --name "$cluster" || true
  fi
  exit "$status"
}
trap finish EXIT

if kind get clusters | grep -qx -- "$cluster"; then
  log "reusing kind cluster $cluster"
else
  log "creating kind cluster $cluster"
  kind create cluster --name "$cluster" --wait 120s
  created=true
fi

log "building $image"
docker build -t "$image" "$root"
kind load docker-image "$image" --name "$cluster"

log "deploying sample databases in namespace $db_ns"
kc create namespace "$db_ns" --dry-run=client -o yaml | kc apply -f -
# $1 name, $2 image; PostgreSQL with user migrator, password change-me, database shop.
postgres_manifest() {
  cat <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: $1, labels: {app: $1}}
spec:
  selector: {matchLabels: {app: $1}}
  template:
    metadata: {labels: {app: $1}}
    spec:
      containers:
        - name: postgres
          image: $2
          env:
            - {name: POSTGRES_USER, value: migrator}
            - {name: POSTGRES_PASSWORD, value: change-me}
            - {name: POSTGRES_DB, value: shop}
          ports: [{containerPort: 5432}]
          readinessProbe:
            exec: {command: [pg_isready, -h, 127.0.0.1, -U, migrator, -d, shop]}
            periodSeconds: 3
---
apiVersion: v1
kind: Service
metadata: {name: $1}
spec:
  selector: {app: $1}
  ports: [{port: 5432, targetPort: 5432}]
EOF
}
{
  postgres_manifest legacy-pg postgres:12
  echo '---'
  postgres_manifest shop-pg16 postgres:16
  echo '---'
  cat <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy-mysql, labels: {app: legacy-mysql}}
spec:
  selector: {matchLabels: {app: legacy-mysql}}
  template:
    metadata: {labels: {app: legacy-mysql}}
    spec:
      containers:
        - name: mysql
          image: mysql:8.4
          env:
            - {name: MYSQL_ROOT_PASSWORD, value: root-change-me}
            - {name: MYSQL_DATABASE, value: legacy}
            - {name: MYSQL_USER, value: reader}
            - {name: MYSQL_PASSWORD, value: change-me}
          ports: [{containerPort: 3306}]
          readinessProbe:
            exec: {command: [mysqladmin, ping, -h, 127.0.0.1, -ureader, -pchange-me]}
            periodSeconds: 3
---
apiVersion: v1
kind: Service
metadata: {name: legacy-mysql}
spec:
  selector: {app: legacy-mysql}
  ports: [{port: 3306, targetPort: 3306}]
EOF
} | kc -n "$db_ns" apply -f -

log "installing the chart (cluster-wide mode)"
"$helm" upgrade --install "$release" "$root/charts/datamigration-operator" \
  --kube-context "$context" --namespace "$operator_ns" --create-namespace \
  --set "image.repository=${image%:*}" --set "image.tag=${image##*:}" --set image.pullPolicy=Never \
  --wait --timeout 5m
kc -n "$operator_ns" rollout status "deployment/$release" --timeout=120s

log "waiting for the databases"
for db in legacy-pg shop-pg16 legacy-mysql; do
  kc -n "$db_ns" rollout status "deployment/$db" --timeout=300s
done

log "seeding the source databases"
kc -n "$db_ns" exec -i deployment/legacy-pg -- psql -v ON_ERROR_STOP=1 -U migrator -d shop <<'EOF'
CREATE TABLE IF NOT EXISTS customers (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS orders (
  id bigint PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES customers (id),
  total numeric(12, 2) NOT NULL,
  status text NOT NULL
);
INSERT INTO customers (id, email) SELECT g, 'customer' || g || '@example.com' FROM generate_series(1, 1000) AS g ON CONFLICT DO NOTHING;
INSERT INTO orders SELECT g, 1 + g % 1000, (g % 500) + 0.99, CASE WHEN g % 3 = 0 THEN 'shipped' ELSE 'open' END
  FROM generate_series(1, 20000) AS g ON CONFLICT DO NOTHING;
EOF
kc -n "$db_ns" exec -i deployment/legacy-mysql -- mysql -ureader -pchange-me legacy <<'EOF'
CREATE TABLE IF NOT EXISTS customers (
  id BIGINT PRIMARY KEY,
  email VARCHAR(255) NOT NULL,
  full_name VARCHAR(255),
  updated_at DATETIME NOT NULL
);
INSERT IGNORE INTO customers VALUES
  (1, 'ada@example.com', 'Ada Lovelace', '2026-01-01 10:00:00'),
  (2, 'grace@example.com', 'Grace Hopper', '2026-01-02 11:30:00'),
  (3, 'edsger@example.com', NULL, '2026-01-03 12:45:00');
EOF
# The MySQL migration's target: a second database on the PostgreSQL 16 server.
exists=$(kc -n "$db_ns" exec deployment/shop-pg16 -- psql -U migrator -d shop -tAc "SELECT count(*) FROM pg_database WHERE datname = 'imported'")
if [[ $exists == 0 ]]; then
  kc -n "$db_ns" exec deployment/shop-pg16 -- createdb -U migrator imported
fi

log "applying the migrations in namespace $app_ns"
kc create namespace "$app_ns" --dry-run=client -o yaml | kc apply -f -
sample="$root/config/samples/pg-to-pg-bigbang.yaml"
grep -q 'tls: {mode: require}' "$sample" || die "$sample changed: adapt the TLS edit below"
# The sample databases serve no TLS; everything else is the sample as shipped.
sed 's/tls: {mode: require}/tls: {mode: disable}/' "$sample" | kc -n "$app_ns" apply -f -
kc -n "$app_ns" apply -f - <<EOF
apiVersion: v1
kind: Secret
metadata: {name: legacy-mysql}
type: Opaque
stringData:
  url: mysql://reader:change-me@legacy-mysql.$db_ns.svc:3306/legacy
---
apiVersion: v1
kind: Secret
metadata: {name: imported-pg}
type: Opaque
stringData:
  url: postgres://migrator:change-me@shop-pg16.$db_ns.svc:5432/imported
---
apiVersion: dataops.dev/v1alpha1
kind: DataMigration
metadata: {name: legacy-customers}
spec:
  source: {engine: mysql, secretRef: {name: legacy-mysql}}
  target: {engine: postgres, secretRef: {name: imported-pg}}
  schema: {createMissingTables: true}
  tables: [{name: customers}]
EOF

for migration in shop-pg-upgrade legacy-customers; do
  log "waiting up to $timeout for datamigration/$migration to succeed"
  kc -n "$app_ns" wait "datamigration/$migration" --for=jsonpath='{.status.phase}'=Succeeded --timeout="$timeout"
done

log "checking the copied rows"
count() { kc -n "$db_ns" exec deployment/shop-pg16 -- psql -U migrator -d "$1" -tAc "SELECT count(*) FROM $2"; }
[[ $(count shop orders) == 20000 ]] || die "shop.orders has $(count shop orders) rows, expected 20000"
[[ $(count shop customers) == 1000 ]] || die "shop.customers has $(count shop customers) rows, expected 1000"
[[ $(count imported customers) == 3 ]] || die "imported.customers has $(count imported customers) rows, expected 3"

log "status"
kc -n "$app_ns" get datamigrations -o wide
for migration in shop-pg-upgrade legacy-customers; do
  kc -n "$app_ns" get "datamigration/$migration" -o jsonpath='{.metadata.name}{": "}{.status}{"\n"}'
done
log "kind e2e passed"

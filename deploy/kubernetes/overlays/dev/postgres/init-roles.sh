#!/bin/sh
# Creates SafeDeploy's three PostgreSQL roles in the audit database (see README.md next to it).
# Run by the postgres image from /docker-entrypoint-initdb.d/ on the first start of an empty data
# directory, as POSTGRES_USER against POSTGRES_DB; runnable by hand with the same variables and
# PGHOST/PGPORT. Idempotent: a second run updates the passwords and changes nothing else.
#
#   safedeploy_migrator  owns the schema: runs the migrations and re-applies the grants
#   safedeploy_audit     the audit writer: SELECT, INSERT on audit_log; writes the read model
#   safedeploy_gateway   read-only: SELECT
#
# The grants on the tables themselves are made by the migrations (safedeploy_audit_grants(),
# called by every migration run), so tables added by later migrations get them too.
set -eu

: "${SAFEDEPLOY_PG_MIGRATOR_PASSWORD:?set SAFEDEPLOY_PG_MIGRATOR_PASSWORD (password of safedeploy_migrator)}"
: "${SAFEDEPLOY_PG_AUDIT_PASSWORD:?set SAFEDEPLOY_PG_AUDIT_PASSWORD (password of safedeploy_audit)}"
: "${SAFEDEPLOY_PG_GATEWAY_PASSWORD:?set SAFEDEPLOY_PG_GATEWAY_PASSWORD (password of safedeploy_gateway)}"

database="${SAFEDEPLOY_PG_DATABASE:-${POSTGRES_DB:-${POSTGRES_USER:-postgres}}}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
  --username "${POSTGRES_USER:-postgres}" --dbname "$database" \
  -v database="$database" \
  -v migrator_password="$SAFEDEPLOY_PG_MIGRATOR_PASSWORD" \
  -v audit_password="$SAFEDEPLOY_PG_AUDIT_PASSWORD" \
  -v gateway_password="$SAFEDEPLOY_PG_GATEWAY_PASSWORD" <<'SQL'
DO $$
DECLARE
  name text;
BEGIN
  FOREACH name IN ARRAY ARRAY['safedeploy_migrator', 'safedeploy_audit', 'safedeploy_gateway'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = name) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I', name);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- created by a concurrent run
      END;
    END IF;
  END LOOP;
END
$$;

-- No role may bypass permissions, create roles or databases, or inherit another's rights.
ALTER ROLE safedeploy_migrator WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS PASSWORD :'migrator_password';
ALTER ROLE safedeploy_audit WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS NOINHERIT PASSWORD :'audit_password';
ALTER ROLE safedeploy_gateway WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION
  NOBYPASSRLS NOINHERIT PASSWORD :'gateway_password';

REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO safedeploy_migrator;
GRANT CONNECT ON DATABASE :"database" TO safedeploy_audit, safedeploy_gateway;

-- The migrator owns the schema (so it, and only it, creates and alters tables there); nobody else
-- may create in it, which is also how migrateAudit tells a role that must not migrate.
ALTER SCHEMA public OWNER TO safedeploy_migrator;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO safedeploy_audit, safedeploy_gateway;
SQL

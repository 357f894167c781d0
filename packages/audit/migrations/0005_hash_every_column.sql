-- Hash versions: rows written before this migration keep version 1 (their hash leaves out `type`
-- and `service`, which verify derives from the payload instead); appendBatch writes version 2,
-- whose hash covers every stored column. Adding a column with a default rewrites no row through
-- UPDATE, so the append-only trigger does not fire; the default is then dropped so a writer must
-- say which version it hashed.
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS hash_version smallint NOT NULL DEFAULT 1;
ALTER TABLE audit_log ALTER COLUMN hash_version DROP DEFAULT;
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_hash_version_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_hash_version_check CHECK (hash_version IN (1, 2));

-- The grants of the separate roles (deploy/postgres/init-roles.sh creates them): the audit writer
-- may read everything, INSERT into the log and write the read model, nothing more; the gateway
-- may only read. Neither owns anything, so neither can disable or drop the append-only triggers.
-- migrateAudit calls this after every run as the schema owner, so tables of later migrations are
-- covered too. A role that does not exist (the single-role default) is skipped.
CREATE OR REPLACE FUNCTION safedeploy_audit_grants() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  schema_name text := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       WHERE c.oid = 'audit_log'::regclass);
  t record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'safedeploy_audit') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO safedeploy_audit', schema_name);
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = schema_name LOOP
      EXECUTE format('REVOKE ALL ON %I.%I FROM safedeploy_audit', schema_name, t.tablename);
      IF t.tablename = 'audit_log' THEN
        EXECUTE format('GRANT SELECT, INSERT ON %I.%I TO safedeploy_audit', schema_name, t.tablename);
      ELSIF t.tablename = 'schema_migrations' THEN
        EXECUTE format('GRANT SELECT ON %I.%I TO safedeploy_audit', schema_name, t.tablename);
      ELSE
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO safedeploy_audit',
                       schema_name, t.tablename);
      END IF;
    END LOOP;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO safedeploy_audit',
                   schema_name);
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'safedeploy_gateway') THEN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO safedeploy_gateway', schema_name);
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM safedeploy_gateway', schema_name);
    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO safedeploy_gateway', schema_name);
  END IF;
END;
$$;

REVOKE ALL ON FUNCTION safedeploy_audit_grants() FROM PUBLIC;

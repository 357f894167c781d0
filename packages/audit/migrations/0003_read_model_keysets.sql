-- Keyset pagination of the read model's lists. The gateway pages by the byte order of keys (the
-- order JavaScript compares them in), so the services index is in the "C" collation whatever the
-- database's default; incidents and proposals page newest first by their time at millisecond
-- precision (the precision their cursors carry), then by id.

CREATE INDEX IF NOT EXISTS services_name_keyset_idx ON services (name COLLATE "C");

CREATE INDEX IF NOT EXISTS incidents_keyset_idx
  ON incidents ((date_trunc('milliseconds', opened_at AT TIME ZONE 'UTC')) DESC, id COLLATE "C");

CREATE INDEX IF NOT EXISTS proposals_keyset_idx
  ON proposals ((date_trunc('milliseconds', created_at AT TIME ZONE 'UTC')) DESC, id COLLATE "C")
  WHERE kind IS NOT NULL;

CREATE INDEX IF NOT EXISTS proposals_state_idx ON proposals (state);

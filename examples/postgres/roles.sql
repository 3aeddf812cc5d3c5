-- postform on PostgreSQL: the roles and the schema, made once by a database
-- administrator (psql -v db=postform -f roles.sql) before the first `postform apply`.
-- Passwords are set out of band (\password, your secret store) and reach postform
-- through PGPASSWORD, ~/.pgpass or the connection string in state.dsn_env: never the YAML.

-- The control plane's apply (CI on the main branch): owns postform's schema, creates and
-- migrates its tables, reads and writes states, takes locks, publishes the relay policy.
CREATE ROLE postform_ci LOGIN;
-- Plans on pull requests: read the state, nothing else (no lock, no write).
CREATE ROLE postform_plan LOGIN;
-- The data plane (every relay): reads the published policy, nothing else. apply grants it
-- SELECT on that table itself when the config names it (state.relay_role: postform_relay).
CREATE ROLE postform_relay LOGIN;

GRANT CONNECT ON DATABASE :"db" TO postform_ci, postform_plan, postform_relay;
CREATE SCHEMA postform AUTHORIZATION postform_ci;
GRANT USAGE ON SCHEMA postform TO postform_plan;
ALTER DEFAULT PRIVILEGES FOR ROLE postform_ci IN SCHEMA postform
    GRANT SELECT ON TABLES TO postform_plan;

-- postform on PostgreSQL: the roles and the schema, made once by a database
-- administrator (psql -v db=postform -f roles.sql) before the first `postform apply`.
-- Passwords are set out of band (\password, your secret store) and reach postform
-- through PGPASSWORD, ~/.pgpass or the connection string in state.dsn_env: never the YAML.

-- The control plane's apply (CI on the main branch): owns postform's schema, creates and
-- migrates its tables, reads and writes states, takes locks, publishes the relay policy.
SELECT 'CREATE ROLE postform_ci LOGIN'
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postform_ci') \gexec
-- Plans on pull requests: read the state, nothing else (no lock, no write).
SELECT 'CREATE ROLE postform_plan LOGIN'
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postform_plan') \gexec
-- The data plane (every relay): reads the published policy and uses the fleet's shared
-- store (suppressions, limits, login throttle), nothing else. apply grants it exactly that
-- when the config names it (state.relay_role: postform_relay); it cannot read the states.
-- Safe to run again: existing roles and the schema are left as they are.
SELECT 'CREATE ROLE postform_relay LOGIN'
    WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postform_relay') \gexec

GRANT CONNECT ON DATABASE :"db" TO postform_ci, postform_plan, postform_relay;
CREATE SCHEMA IF NOT EXISTS postform AUTHORIZATION postform_ci;
GRANT USAGE ON SCHEMA postform TO postform_plan;
ALTER DEFAULT PRIVILEGES FOR ROLE postform_ci IN SCHEMA postform
    GRANT SELECT ON TABLES TO postform_plan;

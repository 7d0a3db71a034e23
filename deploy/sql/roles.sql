-- roles.sql: the role and database TechEmpower's PostgreSQL image has.
--
-- Run as a superuser against any database of the cluster (deploy/stack
-- runs it as "postgres" into "postgres" right after initdb), then load
-- create.sql into hello_world.  Safe to run again.
--
-- TFB's image makes benchmarkdbuser the bootstrap superuser; its
-- verifier runs CREATE EXTENSION on every connection, so keep SUPERUSER.

\set ON_ERROR_STOP 1

SELECT 'CREATE ROLE benchmarkdbuser LOGIN SUPERUSER PASSWORD ''benchmarkdbpass'''
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'benchmarkdbuser')
\gexec

-- CREATE DATABASE cannot run inside a DO block or a function, hence \gexec.
SELECT 'CREATE DATABASE hello_world OWNER benchmarkdbuser'
       ' ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'hello_world')
\gexec

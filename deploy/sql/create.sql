-- create.sql: TechEmpower's hello_world schema and data (tfb-rules.md 10).
--
-- Load into the benchmark database with
--     psql -v ON_ERROR_STOP=1 -d hello_world -f deploy/sql/create.sql
-- on any PostgreSQL.  It drops and recreates the four tables, so loading it
-- again resets the data (new random numbers for World).
--
-- TFB keeps two copies of each table: unquoted names, folded to lower case
-- (world, fortune, column randomnumber), and quoted capitalised ones
-- ("World", "Fortune").  Its verifier reads pg_stat_statements, matching
-- statement text on the table name, and snapshots both "World" and world
-- around the /updates check, so all four must exist.
--
-- The file is UTF-8: two fortunes hold U+2014 EM DASH, one is Japanese.

\set ON_ERROR_STOP 1
SET client_encoding = 'UTF8';

BEGIN;

-- Needs a superuser the first time (benchmarkdbuser is one, as in TFB).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;

DROP TABLE IF EXISTS world, fortune, "World", "Fortune";

CREATE TABLE World (
  id integer NOT NULL,
  randomNumber integer NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
);

CREATE TABLE Fortune (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);

CREATE TABLE "World" (
  id integer NOT NULL,
  randomNumber integer NOT NULL DEFAULT 0,
  PRIMARY KEY (id)
);

CREATE TABLE "Fortune" (
  id integer NOT NULL,
  message varchar(2048) NOT NULL,
  PRIMARY KEY (id)
);

-- 10,000 rows, randomnumber uniform in 1..10000 (least() guards the
-- rounding edge), drawn separately for each copy as TFB does.
INSERT INTO World (id, randomnumber)
SELECT x.id, least(floor(random() * 10000 + 1), 10000)
FROM generate_series(1, 10000) AS x(id);

INSERT INTO "World" (id, randomnumber)
SELECT x.id, least(floor(random() * 10000 + 1), 10000)
FROM generate_series(1, 10000) AS x(id);

INSERT INTO Fortune (id, message) VALUES
  (1, 'fortune: No such file or directory'),
  (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
  (3, 'After enough decimal places, nobody gives a damn.'),
  (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
  (5, 'A computer program does what you tell it to do, not what you want it to do.'),
  (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
  (7, 'Any program that runs right is obsolete.'),
  (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
  (9, 'Feature: A bug with seniority.'),
  (10, 'Computers make very fast, very accurate mistakes.'),
  (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
  (12, 'フレームワークのベンチマーク');

INSERT INTO "Fortune" (id, message) SELECT id, message FROM Fortune;

-- TFB grants to benchmarkdbuser; skip quietly where that role is absent.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'benchmarkdbuser') THEN
    GRANT ALL PRIVILEGES ON world, fortune, "World", "Fortune"
      TO benchmarkdbuser;
  END IF;
END
$$;

COMMIT;

-- Fresh statistics, so the planner sees 10,000 rows from the first query.
ANALYZE world, fortune, "World", "Fortune";

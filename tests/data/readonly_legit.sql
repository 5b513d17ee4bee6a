-- Each line a statement the guard must accept (a nearby legitimate form of a refused attack).
SELECT 1 AS a /* a /* nested */ comment */ , 2 AS z
SELECT 1 /* -- */ AS x
SELECT $a$ $$ $a$ AS s
SELECT E'\'' AS quote, 'a\' AS backslash
SELECT U&'\0041' AS a, U&"d\0061ta" FROM (VALUES (1)) v(data)
SELECT current_setting('TimeZone'), current_setting('server_version_num')::int, current_setting('search_path')
SELECT pg_catalog.concat('a', 'b')
SELECT repeat('-', 40), lpad('7', 3, '0'), rpad('x', 10), format('%-10s|', 'a')
SELECT array_fill(0, ARRAY[3, 3])
SELECT ARRAY['a', 'b'] && ARRAY['a'], '{1,2}'::int[] @> '{1}', '{"a": 1}'::jsonb @> '{"a": 1}'
SELECT translate('hello', 'el', 'ip')
SELECT xpath('/a/b/text()', '<a><b>1</b></a>'::xml)
SELECT count(*) FROM generate_series(1, 100000)
SELECT x FROM (VALUES (1), (2)) v(x) ORDER BY x USING >
SELECT box '(1,1),(2,2)', tsquery 'cat & dog', '10.0.0.1'::inet <<= '10.0.0.0/8'::inet
SELECT 'pg_class'::regclass, regclass('pg_class'), to_regclass('sales.orders')
SELECT * FROM json_to_record('{"a": 1}') AS (a int)
SELECT extract(year FROM now()), substring('abc' FROM 1 FOR 2), trim(both 'x' FROM 'xax'), 'a' SIMILAR TO 'a%'
SELECT now() AT TIME ZONE 'UTC', 'a' IS NORMALIZED, 'a' LIKE 'a!%' ESCAPE '!'
SELECT count(*) FROM information_schema.columns WHERE table_schema = 'sales'
SELECT relname, n_live_tup FROM pg_stat_user_tables ORDER BY relname LIMIT 3
SELECT rolname FROM pg_roles ORDER BY 1 LIMIT 3
SELECT pg_backend_pid() > 0
SELECT id, status FROM sales.orders ORDER BY id LIMIT 5
SELECT count(*) FROM analytics.page_views
SELECT count(*) FROM analytics.page_views_default
TABLE hr.departments
VALUES (1, 'a'), (2, 'b')
WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r
SELECT power(1.05::numeric, 10) AS growth, 2 ^ 10 AS kib, factorial(10) AS f, exp(1.0) AS e
SELECT 123456789012345678901234567890.123456789::numeric / 7 AS long_division

-- pg-mcp demo database: a small online shop with warehouses, staff and web analytics.
-- All data is generated deterministically with generate_series (2025 calendar year); loads in seconds.
--
--   sales.order_status                 enum: pending, paid, shipped, delivered, cancelled, refunded
--   sales.customers                    20,000 rows
--   sales.products                        500 rows
--   sales.orders                       200,000 rows   (FK -> customers)
--   sales.order_items                1,000,000 rows   (FK -> orders, products)  the big table
--   sales."Gift Cards"                    100 rows   (quoted mixed-case name; FK -> customers)
--   sales.customer_order_summary       view
--   inventory.warehouses                   12 rows
--   inventory.stock_levels              6,000 rows   (FK -> warehouses, sales.products)
--   hr.departments                          8 rows
--   hr.employees                          300 rows   (FK -> departments, self-reference manager_id)
--   analytics.page_views              100,000 rows   partitioned by month (12 partitions + default)
--   analytics.daily_revenue            materialized view over sales.orders

SET client_min_messages = warning;

-- ---------------------------------------------------------------- sales
CREATE SCHEMA sales;
COMMENT ON SCHEMA sales IS 'Customers, the product catalogue, orders and their line items';

CREATE TYPE sales.order_status AS ENUM ('pending', 'paid', 'shipped', 'delivered', 'cancelled', 'refunded');
COMMENT ON TYPE sales.order_status IS 'Order lifecycle: pending -> paid -> shipped -> delivered; or cancelled/refunded';

CREATE TABLE sales.customers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    full_name   text NOT NULL,
    country     char(2),
    created_at  timestamptz NOT NULL DEFAULT now(),
    tags        text[],
    preferences jsonb,
    is_active   boolean NOT NULL DEFAULT true
);
COMMENT ON TABLE sales.customers IS 'People and companies who have an account in the shop';
COMMENT ON COLUMN sales.customers.email IS 'Login and contact address, unique, lower case';
COMMENT ON COLUMN sales.customers.country IS 'ISO 3166-1 alpha-2 country code of the billing address';
COMMENT ON COLUMN sales.customers.created_at IS 'When the account was opened';
COMMENT ON COLUMN sales.customers.tags IS 'Marketing segments, e.g. vip, wholesale, newsletter';
COMMENT ON COLUMN sales.customers.preferences IS 'Account preferences: language, currency, newsletter opt-in';
COMMENT ON COLUMN sales.customers.is_active IS 'False once the customer closed the account (soft delete)';

INSERT INTO sales.customers (email, full_name, country, created_at, tags, preferences, is_active)
SELECT 'customer' || g || '@example.com',
       (ARRAY['Ada', 'Ben', 'Chloé', 'Dmitri', 'Elif', 'Farah', 'Giulia', 'Hiro', 'Ines', 'Jonas',
              'Kofi', 'Lena', 'Mateo', 'Noor', 'Olga', 'Pedro'])[1 + g % 16]
       || ' ' ||
       (ARRAY['Smith', 'Müller', 'Dubois', 'Rossi', 'Tanaka', 'Silva', 'Kowalski', 'Nguyen', 'Okafor',
              'Larsen', 'García', 'Novak', 'Ahmed'])[1 + (g / 16) % 13],
       (ARRAY['US', 'DE', 'FR', 'GB', 'JP', 'BR', 'IN', 'CA', 'NL', 'ES'])[1 + (g * 7) % 10],
       timestamptz '2023-01-01 00:00:00+00' + g * interval '47 minutes',
       CASE WHEN g % 20 = 0 THEN ARRAY['vip', 'newsletter']
            WHEN g % 7 = 0 THEN ARRAY['wholesale']
            WHEN g % 3 = 0 THEN ARRAY['newsletter']
            ELSE ARRAY[]::text[] END,
       jsonb_build_object('language', (ARRAY['en', 'de', 'fr', 'ja', 'pt'])[1 + g % 5],
                          'currency', (ARRAY['USD', 'EUR', 'GBP', 'JPY'])[1 + g % 4],
                          'newsletter', g % 3 = 0),
       g % 23 <> 0
FROM generate_series(1, 20000) AS g;

CREATE TABLE sales.products (
    id         int PRIMARY KEY,
    sku        text NOT NULL UNIQUE,
    name       text NOT NULL,
    category   text NOT NULL,
    price      numeric(12, 2) NOT NULL CHECK (price >= 0),
    attributes jsonb,
    created_on date NOT NULL
);
COMMENT ON TABLE sales.products IS 'The product catalogue';
COMMENT ON COLUMN sales.products.sku IS 'Stock keeping unit printed on the label, e.g. SKU-00042';
COMMENT ON COLUMN sales.products.price IS 'Current list price in USD, before tax';
COMMENT ON COLUMN sales.products.attributes IS 'Free-form attributes: color, weight_kg, size';

INSERT INTO sales.products
SELECT g,
       'SKU-' || lpad(g::text, 5, '0'),
       (ARRAY['Classic', 'Pro', 'Eco', 'Mini', 'Max', 'Smart', 'Urban', 'Trail'])[1 + g % 8] || ' ' ||
       (ARRAY['Backpack', 'Kettle', 'Lamp', 'Headphones', 'Chair', 'Bottle', 'Jacket', 'Watch',
              'Blender', 'Tent'])[1 + (g / 8) % 10] || ' ' || g,
       (ARRAY['outdoor', 'kitchen', 'home', 'audio', 'furniture', 'sports', 'apparel', 'accessories'])[1 + g % 8],
       round(5 + (g * 37) % 995 + (g % 100) / 100.0, 2),
       jsonb_build_object('color', (ARRAY['black', 'white', 'red', 'green', 'blue'])[1 + g % 5],
                          'weight_kg', round((0.1 + (g % 50) / 10.0)::numeric, 1)),
       date '2022-01-01' + g
FROM generate_series(1, 500) AS g;

-- Constraints on the big tables are added after loading: one validation pass instead of a check per row.
CREATE TABLE sales.orders (
    id               bigint NOT NULL,
    customer_id      bigint NOT NULL,
    status           sales.order_status NOT NULL DEFAULT 'pending',
    ordered_at       timestamptz NOT NULL,
    shipping_address jsonb,
    total            numeric(14, 2),
    note             text
);
COMMENT ON TABLE sales.orders IS 'One row per checkout; the amounts are in sales.order_items';
COMMENT ON COLUMN sales.orders.status IS 'Lifecycle state; revenue counts paid, shipped and delivered orders';
COMMENT ON COLUMN sales.orders.ordered_at IS 'Checkout time (UTC)';
COMMENT ON COLUMN sales.orders.shipping_address IS 'Delivery address: street, city, zip, country';
COMMENT ON COLUMN sales.orders.total IS 'Sum of the line items in USD (quantity * unit_price)';
COMMENT ON COLUMN sales.orders.note IS 'Optional note the customer left at checkout';


CREATE TABLE sales.order_items (
    order_id   bigint NOT NULL,
    line_no    int NOT NULL,
    product_id int NOT NULL,
    quantity   int NOT NULL CHECK (quantity > 0),
    unit_price numeric(12, 2) NOT NULL
);
COMMENT ON TABLE sales.order_items IS 'Order lines: which product, how many, at what price';
COMMENT ON COLUMN sales.order_items.line_no IS 'Position of the line within its order, from 1';
COMMENT ON COLUMN sales.order_items.unit_price IS 'Price per unit in USD at the time of the order';

INSERT INTO sales.order_items
SELECT 1 + (g - 1) / 5,
       1 + (g - 1) % 5,
       1 + (g * 31) % 500,
       1 + g % 4,
       round(5 + ((1 + (g * 31) % 500) * 37) % 995 + ((1 + (g * 31) % 500) % 100) / 100.0, 2)
FROM generate_series(1, 1000000) AS g;

INSERT INTO sales.orders
SELECT g,
       1 + (g * 7919) % 20000,
       (CASE WHEN g % 100 < 5 THEN 'pending' WHEN g % 100 < 15 THEN 'paid' WHEN g % 100 < 30 THEN 'shipped'
             WHEN g % 100 < 90 THEN 'delivered' WHEN g % 100 < 96 THEN 'cancelled'
             ELSE 'refunded' END)::sales.order_status,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '157 seconds',
       jsonb_build_object('street', (g % 300) + 1 || ' Main Street',
                          'city', (ARRAY['Berlin', 'Paris', 'Austin', 'Osaka', 'Lisbon', 'Toronto'])[1 + g % 6],
                          'zip', lpad(((g * 13) % 99999)::text, 5, '0')),
       items.total,
       CASE WHEN g % 50 = 0 THEN 'Please leave the parcel with the neighbour' END
FROM (SELECT order_id AS g, sum(quantity * unit_price) AS total FROM sales.order_items GROUP BY order_id ORDER BY order_id) AS items;

SET maintenance_work_mem = '256MB';
ALTER TABLE sales.orders
    ADD PRIMARY KEY (id),
    ADD FOREIGN KEY (customer_id) REFERENCES sales.customers (id);
ALTER TABLE sales.order_items
    ADD PRIMARY KEY (order_id, line_no),
    ADD FOREIGN KEY (order_id) REFERENCES sales.orders (id),
    ADD FOREIGN KEY (product_id) REFERENCES sales.products (id);
CREATE INDEX order_items_product_id_idx ON sales.order_items (product_id);
CREATE INDEX orders_customer_id_idx ON sales.orders (customer_id);
CREATE INDEX orders_ordered_at_idx ON sales.orders (ordered_at);

CREATE TABLE sales."Gift Cards" (
    id        int PRIMARY KEY,
    "Code"    text NOT NULL UNIQUE,
    balance   numeric(10, 2) NOT NULL DEFAULT 0,
    issued_to bigint REFERENCES sales.customers (id)
);
COMMENT ON TABLE sales."Gift Cards" IS 'Prepaid gift cards (the table name is quoted and mixed case)';
COMMENT ON COLUMN sales."Gift Cards"."Code" IS 'Code printed on the card';
COMMENT ON COLUMN sales."Gift Cards".balance IS 'Remaining balance in USD';

INSERT INTO sales."Gift Cards"
SELECT g, 'GC-' || upper(substr(md5(g::text), 1, 8)), round((g * 7 % 200)::numeric + 0.5, 2),
       CASE WHEN g % 4 = 0 THEN NULL ELSE 1 + (g * 211) % 20000 END
FROM generate_series(1, 100) AS g;

CREATE VIEW sales.customer_order_summary AS
SELECT c.id AS customer_id, c.full_name, c.country,
       count(o.id) AS orders,
       coalesce(sum(o.total) FILTER (WHERE o.status IN ('paid', 'shipped', 'delivered')), 0) AS lifetime_value,
       max(o.ordered_at) AS last_order_at
FROM sales.customers c LEFT JOIN sales.orders o ON o.customer_id = c.id
GROUP BY c.id, c.full_name, c.country;
COMMENT ON VIEW sales.customer_order_summary IS 'Per customer: number of orders, lifetime value (paid or later) and last order';

-- ---------------------------------------------------------------- inventory
CREATE SCHEMA inventory;
COMMENT ON SCHEMA inventory IS 'Warehouses and how much of each product they hold';

CREATE TABLE inventory.warehouses (
    id       int PRIMARY KEY,
    code     text NOT NULL UNIQUE,
    city     text NOT NULL,
    location point
);
COMMENT ON TABLE inventory.warehouses IS 'Distribution centres';
COMMENT ON COLUMN inventory.warehouses.location IS 'Longitude and latitude as a point (x = lon, y = lat)';

INSERT INTO inventory.warehouses VALUES
    (1, 'BER1', 'Berlin', point(13.40, 52.52)), (2, 'PAR1', 'Paris', point(2.35, 48.86)),
    (3, 'AUS1', 'Austin', point(-97.74, 30.27)), (4, 'OSA1', 'Osaka', point(135.50, 34.69)),
    (5, 'LIS1', 'Lisbon', point(-9.14, 38.72)), (6, 'TOR1', 'Toronto', point(-79.38, 43.65)),
    (7, 'MAD1', 'Madrid', point(-3.70, 40.42)), (8, 'AMS1', 'Amsterdam', point(4.90, 52.37)),
    (9, 'CHI1', 'Chicago', point(-87.63, 41.88)), (10, 'SAO1', 'São Paulo', point(-46.63, -23.55)),
    (11, 'MUM1', 'Mumbai', point(72.88, 19.08)), (12, 'SYD1', 'Sydney', point(151.21, -33.87));

CREATE TABLE inventory.stock_levels (
    warehouse_id int NOT NULL REFERENCES inventory.warehouses (id),
    product_id   int NOT NULL REFERENCES sales.products (id),
    on_hand      int NOT NULL CHECK (on_hand >= 0),
    reserved     int NOT NULL DEFAULT 0,
    updated_at   timestamp NOT NULL,
    PRIMARY KEY (warehouse_id, product_id)
);
COMMENT ON TABLE inventory.stock_levels IS 'Units per product per warehouse, refreshed by the nightly stock count';
COMMENT ON COLUMN inventory.stock_levels.reserved IS 'Units promised to open orders; available = on_hand - reserved';
COMMENT ON COLUMN inventory.stock_levels.updated_at IS 'Local time of the last count (timestamp without time zone)';

INSERT INTO inventory.stock_levels
SELECT w, p, (w * 17 + p * 29) % 400, (w + p) % 15, timestamp '2025-12-31 02:00' - ((w * p) % 72) * interval '1 hour'
FROM generate_series(1, 12) AS w, generate_series(1, 500) AS p;

-- ---------------------------------------------------------------- hr
CREATE SCHEMA hr;
COMMENT ON SCHEMA hr IS 'Departments and employees';

CREATE TABLE hr.departments (
    id     int PRIMARY KEY,
    name   text NOT NULL UNIQUE,
    budget money
);
COMMENT ON TABLE hr.departments IS 'Organisational units with their yearly budget';

INSERT INTO hr.departments VALUES
    (1, 'Executive', 2000000), (2, 'Engineering', 9500000), (3, 'Sales', 4200000), (4, 'Marketing', 2600000),
    (5, 'Customer Support', 1800000), (6, 'Logistics', 3900000), (7, 'Finance', 1200000), (8, 'People', 900000);

CREATE TABLE hr.employees (
    id            int PRIMARY KEY,
    department_id int NOT NULL REFERENCES hr.departments (id),
    manager_id    int REFERENCES hr.employees (id),
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    email         text NOT NULL UNIQUE,
    hired_on      date NOT NULL,
    salary        numeric(10, 2) NOT NULL,
    skills        text[] NOT NULL DEFAULT '{}',
    uuid          uuid NOT NULL DEFAULT gen_random_uuid()
);
COMMENT ON TABLE hr.employees IS 'Staff; manager_id points at another employee (NULL for the CEO)';
COMMENT ON COLUMN hr.employees.salary IS 'Yearly gross salary in USD';

INSERT INTO hr.employees (id, department_id, manager_id, first_name, last_name, email, hired_on, salary, skills)
SELECT g,
       CASE WHEN g = 1 THEN 1 ELSE 2 + g % 7 END,
       CASE WHEN g = 1 THEN NULL WHEN g <= 9 THEN 1 ELSE 2 + (g - 10) % 8 END,
       (ARRAY['Amara', 'Bruno', 'Cleo', 'Dev', 'Esme', 'Felix', 'Greta', 'Hugo', 'Iris', 'Jun'])[1 + g % 10],
       (ARRAY['Berg', 'Costa', 'Diaz', 'Evans', 'Fischer', 'Gupta', 'Hall', 'Ito', 'Jensen'])[1 + (g / 10) % 9],
       'employee' || g || '@shop.example',
       date '2015-03-01' + (g * 11) % 3650,
       round(42000 + (g * 379) % 98000, 2),
       CASE g % 5 WHEN 0 THEN ARRAY['sql', 'python'] WHEN 1 THEN ARRAY['negotiation', 'crm']
                  WHEN 2 THEN ARRAY['design', 'copywriting'] WHEN 3 THEN ARRAY['forklift', 'planning']
                  ELSE ARRAY['excel', 'ifrs'] END
FROM generate_series(1, 300) AS g;

-- ---------------------------------------------------------------- analytics
CREATE SCHEMA analytics;
COMMENT ON SCHEMA analytics IS 'Web analytics and reporting tables';

CREATE TABLE analytics.page_views (
    id          bigint NOT NULL,
    viewed_at   timestamptz NOT NULL,
    customer_id bigint REFERENCES sales.customers (id),
    path        text NOT NULL,
    referrer    text,
    duration_ms int,
    client_ip   inet
) PARTITION BY RANGE (viewed_at);
COMMENT ON TABLE analytics.page_views IS 'Every page view on the shop website, one partition per month';
COMMENT ON COLUMN analytics.page_views.customer_id IS 'Logged-in customer, NULL for anonymous visitors';
COMMENT ON COLUMN analytics.page_views.duration_ms IS 'Time on page in milliseconds';

DO $$
BEGIN
    FOR m IN 1..12 LOOP
        EXECUTE format(
            'CREATE TABLE analytics.page_views_2025_%s PARTITION OF analytics.page_views FOR VALUES FROM (%L) TO (%L)',
            lpad(m::text, 2, '0'), make_timestamptz(2025, m, 1, 0, 0, 0, 'UTC'),
            make_timestamptz(2025, m, 1, 0, 0, 0, 'UTC') + interval '1 month');
    END LOOP;
END $$;
CREATE TABLE analytics.page_views_default PARTITION OF analytics.page_views DEFAULT;

INSERT INTO analytics.page_views
SELECT g,
       timestamptz '2025-01-01 00:00:00+00' + g * interval '315 seconds',
       CASE WHEN g % 4 = 0 THEN NULL ELSE 1 + (g * 37) % 20000 END,
       (ARRAY['/', '/search', '/cart', '/checkout', '/account', '/products/' || (1 + g % 500)])[1 + g % 6],
       (ARRAY[NULL, 'https://www.google.com/', 'https://news.example/', 'https://social.example/'])[1 + g % 4],
       200 + (g * 53) % 60000,
       ('10.' || (g % 256) || '.' || ((g / 256) % 256) || '.' || (g % 250 + 1))::inet
FROM generate_series(1, 100000) AS g;
ALTER TABLE analytics.page_views ADD PRIMARY KEY (id, viewed_at);

CREATE MATERIALIZED VIEW analytics.daily_revenue AS
SELECT (ordered_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS orders, sum(total) AS revenue
FROM sales.orders
WHERE status IN ('paid', 'shipped', 'delivered')
GROUP BY 1;
COMMENT ON MATERIALIZED VIEW analytics.daily_revenue IS 'Revenue per UTC day from paid, shipped and delivered orders; refreshed nightly';

ANALYZE;

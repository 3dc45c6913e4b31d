-- txn_features: per-enterprise cash-flow aggregates over the 30, 90 and 180 days before the
-- run date, from the core banking system's transactions.
--
-- Written for 50M+ transactions on a small machine: one pass of conditional aggregates per
-- enterprise (CASE inside the aggregate streams; FILTER (WHERE ...) does not), monthly totals
-- for volatility, and counterparties through their most recent transaction (a counterparty is
-- in the 30-day window when its latest transaction is), so that no aggregate keeps distinct
-- values per enterprise.
/* config
description = "Inflow, outflow, net flow, volatility and counterparties per enterprise over 30/90/180 days"
[[checks]]
type = "unique"
column = "credit_code"
[[checks]]
type = "not_null"
columns = ["credit_code", "inflow_180d", "outflow_180d", "txn_count_180d"]
[[checks]]
type = "range"
column = "inflow_180d"
min = 0
[[checks]]
type = "expression"
expression = "counterparties_30d <= counterparties_90d AND counterparties_90d <= counterparties_180d"
[[checks]]
type = "row_count"
min = 1
*/
WITH tx AS (
    SELECT
        credit_code,
        EXTRACT(YEAR FROM ts) * 100 + EXTRACT(MONTH FROM ts) AS month,
        CASE WHEN direction = 'in' THEN amount ELSE 0.0 END AS inflow,
        CASE WHEN direction = 'out' THEN amount ELSE 0.0 END AS outflow,
        amount,
        counterparty_account,
        DATE_DIFF('day', ts, DATE '{{ ds }}') AS age_days
    FROM clean.transactions
    WHERE currency = 'CNY'
      AND ts < DATE '{{ ds }}' + INTERVAL '1 day'
      AND ts >= DATE '{{ ds }}' - INTERVAL '180 days'
),
flows AS (
    SELECT
        credit_code,
        SUM(CASE WHEN age_days < 30 THEN inflow END) AS inflow_30d,
        SUM(CASE WHEN age_days < 30 THEN outflow END) AS outflow_30d,
        COUNT(CASE WHEN age_days < 30 THEN 1 END) AS txn_count_30d,
        STDDEV(CASE WHEN age_days < 30 THEN amount END) AS amount_std_30d,
        SUM(CASE WHEN age_days < 90 THEN inflow END) AS inflow_90d,
        SUM(CASE WHEN age_days < 90 THEN outflow END) AS outflow_90d,
        COUNT(CASE WHEN age_days < 90 THEN 1 END) AS txn_count_90d,
        STDDEV(CASE WHEN age_days < 90 THEN amount END) AS amount_std_90d,
        SUM(inflow) AS inflow_180d,
        SUM(outflow) AS outflow_180d,
        COUNT(*) AS txn_count_180d,
        STDDEV(amount) AS amount_std_180d,
        SUM(CASE WHEN age_days >= 90 THEN inflow END) AS inflow_prior_90d,
        MIN(age_days) AS days_since_last_txn
    FROM tx
    GROUP BY credit_code
),
monthly AS (
    SELECT credit_code, month, SUM(inflow) AS inflow, SUM(inflow) - SUM(outflow) AS net
    FROM tx
    GROUP BY credit_code, month
),
monthly_stats AS (
    SELECT
        credit_code,
        COUNT(*) AS active_months_180d,
        STDDEV(inflow) AS monthly_inflow_std_180d,
        STDDEV(inflow) / NULLIF(AVG(inflow), 0) AS inflow_cv_180d,
        STDDEV(net) AS monthly_net_std_180d
    FROM monthly
    GROUP BY credit_code
),
latest_by_counterparty AS (
    SELECT credit_code, counterparty_account, MIN(age_days) AS age_days
    FROM tx
    WHERE counterparty_account IS NOT NULL
    GROUP BY credit_code, counterparty_account
),
counterparties AS (
    SELECT
        credit_code,
        COUNT(CASE WHEN age_days < 30 THEN 1 END) AS counterparties_30d,
        COUNT(CASE WHEN age_days < 90 THEN 1 END) AS counterparties_90d,
        COUNT(*) AS counterparties_180d
    FROM latest_by_counterparty
    GROUP BY credit_code
)
SELECT
    f.credit_code,
    COALESCE(f.inflow_30d, 0) AS inflow_30d,
    COALESCE(f.outflow_30d, 0) AS outflow_30d,
    COALESCE(f.inflow_30d, 0) - COALESCE(f.outflow_30d, 0) AS net_30d,
    f.txn_count_30d,
    f.amount_std_30d,
    COALESCE(c.counterparties_30d, 0) AS counterparties_30d,
    COALESCE(f.inflow_90d, 0) AS inflow_90d,
    COALESCE(f.outflow_90d, 0) AS outflow_90d,
    COALESCE(f.inflow_90d, 0) - COALESCE(f.outflow_90d, 0) AS net_90d,
    f.txn_count_90d,
    f.amount_std_90d,
    COALESCE(c.counterparties_90d, 0) AS counterparties_90d,
    f.inflow_180d,
    f.outflow_180d,
    f.inflow_180d - f.outflow_180d AS net_180d,
    f.txn_count_180d,
    f.amount_std_180d,
    COALESCE(c.counterparties_180d, 0) AS counterparties_180d,
    m.active_months_180d,
    m.monthly_inflow_std_180d,
    m.inflow_cv_180d,
    m.monthly_net_std_180d,
    COALESCE(f.inflow_90d, 0) / NULLIF(f.inflow_prior_90d, 0) AS inflow_trend_90d,
    f.days_since_last_txn
FROM flows f
LEFT JOIN monthly_stats m ON m.credit_code = f.credit_code
LEFT JOIN counterparties c ON c.credit_code = f.credit_code

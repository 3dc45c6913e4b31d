-- txn_features: per-enterprise cash-flow aggregates over the 30, 90 and 180 days before the
-- run date, from the core banking system's transactions.
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
type = "row_count"
min = 1
*/
WITH tx AS (
    SELECT
        credit_code,
        CAST(ts AS DATE) AS day,
        STRFTIME(ts, '%Y-%m') AS month,
        CASE WHEN direction = 'in' THEN amount ELSE 0.0 END AS inflow,
        CASE WHEN direction = 'out' THEN amount ELSE 0.0 END AS outflow,
        amount,
        counterparty_account,
        DATE_DIFF('day', CAST(ts AS DATE), DATE '{{ ds }}') AS age_days
    FROM clean.transactions
    WHERE currency = 'CNY'
      AND ts < DATE '{{ ds }}' + INTERVAL '1 day'
      AND ts >= DATE '{{ ds }}' - INTERVAL '180 days'
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
        AVG(inflow) AS monthly_inflow_avg_180d,
        STDDEV(net) AS monthly_net_std_180d
    FROM monthly
    GROUP BY credit_code
)
SELECT
    t.credit_code,
    SUM(CASE WHEN age_days < 30 THEN inflow ELSE 0.0 END) AS inflow_30d,
    SUM(CASE WHEN age_days < 30 THEN outflow ELSE 0.0 END) AS outflow_30d,
    SUM(CASE WHEN age_days < 30 THEN inflow - outflow ELSE 0.0 END) AS net_30d,
    COUNT(CASE WHEN age_days < 30 THEN 1 END) AS txn_count_30d,
    STDDEV(CASE WHEN age_days < 30 THEN amount END) AS amount_std_30d,
    COUNT(DISTINCT CASE WHEN age_days < 30 THEN counterparty_account END) AS counterparties_30d,
    SUM(CASE WHEN age_days < 90 THEN inflow ELSE 0.0 END) AS inflow_90d,
    SUM(CASE WHEN age_days < 90 THEN outflow ELSE 0.0 END) AS outflow_90d,
    SUM(CASE WHEN age_days < 90 THEN inflow - outflow ELSE 0.0 END) AS net_90d,
    COUNT(CASE WHEN age_days < 90 THEN 1 END) AS txn_count_90d,
    STDDEV(CASE WHEN age_days < 90 THEN amount END) AS amount_std_90d,
    COUNT(DISTINCT CASE WHEN age_days < 90 THEN counterparty_account END) AS counterparties_90d,
    SUM(inflow) AS inflow_180d,
    SUM(outflow) AS outflow_180d,
    SUM(inflow - outflow) AS net_180d,
    COUNT(*) AS txn_count_180d,
    STDDEV(amount) AS amount_std_180d,
    COUNT(DISTINCT counterparty_account) AS counterparties_180d,
    COUNT(DISTINCT day) AS active_days_180d,
    MAX(m.active_months_180d) AS active_months_180d,
    MAX(m.monthly_inflow_std_180d) AS monthly_inflow_std_180d,
    MAX(CASE WHEN m.monthly_inflow_avg_180d > 0
             THEN m.monthly_inflow_std_180d / m.monthly_inflow_avg_180d END) AS inflow_cv_180d,
    MAX(m.monthly_net_std_180d) AS monthly_net_std_180d,
    SUM(CASE WHEN age_days < 90 THEN inflow ELSE 0.0 END)
        / NULLIF(SUM(CASE WHEN age_days >= 90 THEN inflow ELSE 0.0 END), 0) AS inflow_trend_90d,
    MIN(age_days) AS days_since_last_txn
FROM tx t
LEFT JOIN monthly_stats m ON m.credit_code = t.credit_code
GROUP BY t.credit_code

-- application_features: one row per application of the last three years, with the
-- enterprise's features joined for modelling, point-in-time repayment history (instalments of
-- earlier loans due before the application) and the default label where it is known.
--
-- Label rule (docs/data.md): a loan is bad when an instalment due in its first 12 months
-- reaches 90 days past due; it is known for loans disbursed at least 16 months before the run
-- date. default_label is NULL for applications that were not approved or are too recent.
/* config
description = "Applications joined with enterprise, cash-flow, tax, telecom, court, device and repayment features; default label"
[[checks]]
type = "unique"
column = "application_id"
[[checks]]
type = "not_null"
columns = ["application_id", "credit_code", "apply_date", "amount"]
[[checks]]
type = "accepted_values"
column = "default_label"
values = [0, 1]
[[checks]]
type = "relationships"
column = "credit_code"
to = "clean.enterprises"
tolerance = 0.02
severity = "warn"
*/
WITH apps AS (
    SELECT
        application_id, credit_code, amount, apply_date, product, channel, term_months, status,
        CAST(updated_at AS DATE) AS decided_date,
        ROW_NUMBER() OVER (PARTITION BY credit_code ORDER BY apply_date, application_id) AS enterprise_application_seq
    FROM clean.applications
),
prior_repayments AS (
    SELECT
        a.application_id,
        COUNT(DISTINCT r.loan_id) AS prior_loans,
        MAX(r.overdue_days) AS prior_max_overdue_days,
        COUNT(DISTINCT CASE WHEN r.overdue_days > 0 THEN r.period END) AS prior_overdue_months
    FROM apps a
    JOIN clean.repayments r ON r.credit_code = a.credit_code
    WHERE r.due_date < a.apply_date AND r.application_id <> a.application_id
    GROUP BY a.application_id
),
labels AS (
    SELECT application_id,
           MAX(CASE WHEN period_no <= 12 AND overdue_days >= 90 THEN 1 ELSE 0 END) AS bad
    FROM clean.repayments
    GROUP BY application_id
)
SELECT
    a.application_id,
    a.credit_code,
    a.apply_date,
    a.amount,
    a.product,
    a.channel,
    a.term_months,
    a.status,
    a.enterprise_application_seq,
    e.industry,
    e.province,
    e.entity_type,
    e.registered_capital,
    e.employees,
    DATE_DIFF('month', e.founding_date, a.apply_date) AS enterprise_age_months,
    t.inflow_30d, t.outflow_30d, t.net_30d, t.txn_count_30d, t.counterparties_30d,
    t.inflow_90d, t.outflow_90d, t.net_90d, t.txn_count_90d, t.counterparties_90d,
    t.inflow_180d, t.outflow_180d, t.net_180d, t.txn_count_180d, t.counterparties_180d,
    t.amount_std_180d, t.inflow_cv_180d, t.monthly_net_std_180d, t.inflow_trend_90d,
    t.active_months_180d, t.days_since_last_txn,
    a.amount / NULLIF(t.inflow_180d, 0) AS amount_to_inflow_180d,
    x.sales_12m, x.sales_6m, x.sales_growth_6m, x.sales_slope_rel, x.sales_cv_12m,
    x.tax_paid_ratio, x.late_filings_12m, x.zero_filings_12m, x.days_since_last_filing,
    a.amount / NULLIF(x.sales_12m, 0) AS amount_to_sales_12m,
    m.phones, m.carriers, m.min_tenure_months, m.avg_tenure_months, m.spend_avg, m.spend_cv,
    m.suspended_lines, m.unverified_lines,
    COALESCE(c.court_records, 0) AS court_records,
    COALESCE(c.dishonest_hits, 0) AS dishonest_hits,
    COALESCE(c.restricted_hits, 0) AS restricted_hits,
    COALESCE(c.open_cases, 0) AS open_cases,
    d.imei_applicants, d.iccid_applicants, d.ip_applicants, d.shared_device, d.applicant_applications,
    COALESCE(p.prior_loans, 0) AS prior_loans,
    COALESCE(p.prior_max_overdue_days, 0) AS prior_max_overdue_days,
    COALESCE(p.prior_overdue_months, 0) AS prior_overdue_months,
    CASE
        WHEN a.status = 'approved' AND a.decided_date <= DATE '{{ ds }}' - INTERVAL '16 months'
        THEN COALESCE(l.bad, 0)
    END AS default_label
FROM apps a
LEFT JOIN clean.enterprises e ON e.credit_code = a.credit_code
LEFT JOIN txn_features t ON t.credit_code = a.credit_code
LEFT JOIN tax_features x ON x.credit_code = a.credit_code
LEFT JOIN telecom_features m ON m.credit_code = a.credit_code
LEFT JOIN court_features c ON c.credit_code = a.credit_code
LEFT JOIN device_features d ON d.application_id = a.application_id
LEFT JOIN prior_repayments p ON p.application_id = a.application_id
LEFT JOIN labels l ON l.application_id = a.application_id

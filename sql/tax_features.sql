-- tax_features: the VAT trend of each enterprise over the twelve months before the run date
-- (monthly returns for general taxpayers, quarterly for small-scale ones).
/* config
description = "Sales over 6 and 12 months, growth and slope, late and zero returns, tax paid ratio"
[[checks]]
type = "unique"
column = "credit_code"
[[checks]]
type = "range"
column = "filings_12m"
min = 1
max = 12
[[checks]]
type = "range"
column = "tax_paid_ratio"
min = 0
max = 1.5
severity = "warn"
*/
WITH filings AS (
    SELECT
        credit_code,
        taxpayer_type,
        sales_amount,
        tax_payable,
        tax_paid,
        status,
        filing_date,
        DATE_DIFF('month', DATE(CONCAT(period, '01'), '%Y%m%d'), DATE '{{ ds }}') AS months_ago
    FROM clean.tax_filings
)
SELECT
    credit_code,
    MAX(taxpayer_type) AS taxpayer_type,
    COUNT(*) AS filings_12m,
    SUM(sales_amount) AS sales_12m,
    SUM(CASE WHEN months_ago <= 6 THEN sales_amount ELSE 0.0 END) AS sales_6m,
    SUM(CASE WHEN months_ago <= 6 THEN sales_amount ELSE 0.0 END)
        / NULLIF(SUM(CASE WHEN months_ago > 6 THEN sales_amount ELSE 0.0 END), 0) - 1 AS sales_growth_6m,
    -- Least-squares slope of sales per month, relative to the mean: a trend that does not
    -- depend on the enterprise's size.
    COVAR_SAMP(sales_amount, -1.0 * months_ago) / NULLIF(VAR_SAMP(-1.0 * months_ago), 0)
        / NULLIF(AVG(sales_amount), 0) AS sales_slope_rel,
    STDDEV(sales_amount) / NULLIF(AVG(sales_amount), 0) AS sales_cv_12m,
    SUM(tax_paid) / NULLIF(SUM(tax_payable), 0) AS tax_paid_ratio,
    SUM(CASE WHEN status = 'late' THEN 1 ELSE 0 END) AS late_filings_12m,
    SUM(CASE WHEN status = 'zero' THEN 1 ELSE 0 END) AS zero_filings_12m,
    DATE_DIFF('day', MAX(filing_date), DATE '{{ ds }}') AS days_since_last_filing
FROM filings
WHERE months_ago BETWEEN 0 AND 12
GROUP BY credit_code

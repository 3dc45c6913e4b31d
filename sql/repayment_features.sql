-- repayment_features: how each enterprise has repaid its loans, as the loan system sees it on
-- the run date.
/* config
description = "Loans, instalments due, maximum days overdue, overdue months, paid ratio, current arrears"
[[checks]]
type = "unique"
column = "credit_code"
[[checks]]
type = "range"
column = "max_overdue_days"
min = 0
max = 3650
[[checks]]
type = "expression"
expression = "overdue_months_12m <= overdue_months"
*/
SELECT
    credit_code,
    COUNT(DISTINCT loan_id) AS loans,
    COUNT(*) AS instalments_due,
    MAX(overdue_days) AS max_overdue_days,
    COUNT(DISTINCT CASE WHEN overdue_days > 0 THEN period END) AS overdue_months,
    COUNT(DISTINCT CASE WHEN overdue_days > 0 AND due_date > DATE '{{ ds }}' - INTERVAL '12 months'
                        THEN period END) AS overdue_months_12m,
    SUM(CASE WHEN overdue_days >= 30 THEN 1 ELSE 0 END) AS overdue_30_instalments,
    SUM(CASE WHEN overdue_days >= 90 THEN 1 ELSE 0 END) AS overdue_90_instalments,
    SUM(COALESCE(paid_amount, 0)) / NULLIF(SUM(due_amount), 0) AS paid_ratio,
    SUM(CASE WHEN paid_date IS NULL THEN due_amount ELSE 0.0 END) AS unpaid_due_amount,
    COALESCE(MAX(CASE WHEN paid_date IS NULL THEN DATE_DIFF('day', due_date, DATE '{{ ds }}') END), 0)
        AS current_days_past_due
FROM clean.repayments
WHERE due_date <= DATE '{{ ds }}'
GROUP BY credit_code

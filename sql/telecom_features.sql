-- telecom_features: the phones behind each enterprise (its persons' and its applicants') and
-- what the operators say of them: carriers, tenure, spend and its stability.
/* config
description = "Phones, carriers, SIM tenure, monthly spend and its stability, suspended and unverified lines"
[[checks]]
type = "unique"
column = "credit_code"
[[checks]]
type = "range"
column = "carriers"
min = 0
max = 3
[[checks]]
type = "expression"
expression = "phones_with_operator_data <= phones"
*/
WITH phones AS (
    SELECT credit_code, phone FROM clean.persons WHERE phone IS NOT NULL
    UNION
    SELECT credit_code, applicant_phone AS phone FROM clean.applications WHERE applicant_phone IS NOT NULL
),
per_phone AS (
    SELECT
        phone,
        MAX(carrier) AS carrier,
        MAX(tenure_months) AS tenure_months,
        AVG(spend) AS spend_avg,
        STDDEV(spend) AS spend_std,
        MAX(CASE WHEN line_status = 'suspended' THEN 1 ELSE 0 END) AS suspended,
        MIN(CASE WHEN real_name_verified THEN 1 ELSE 0 END) AS verified,
        AVG(calls_out + calls_in) AS calls_avg
    FROM clean.telecom
    GROUP BY phone
)
SELECT
    p.credit_code,
    COUNT(DISTINCT p.phone) AS phones,
    COUNT(DISTINCT t.phone) AS phones_with_operator_data,
    COUNT(DISTINCT t.carrier) AS carriers,
    MIN(t.tenure_months) AS min_tenure_months,
    AVG(t.tenure_months) AS avg_tenure_months,
    AVG(t.spend_avg) AS spend_avg,
    AVG(t.spend_std / NULLIF(t.spend_avg, 0)) AS spend_cv,
    SUM(t.suspended) AS suspended_lines,
    SUM(1 - t.verified) AS unverified_lines,
    AVG(t.calls_avg) AS calls_avg
FROM phones p
LEFT JOIN per_phone t ON t.phone = p.phone
GROUP BY p.credit_code

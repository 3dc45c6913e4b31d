-- court_features: court cases and blacklist entries (失信被执行人 "dishonest", 限制高消费
-- "restricted") of each enterprise and of its persons (matched by tokenized ID card).
/* config
description = "Court records and blacklist hits of the enterprise and its persons"
[[checks]]
type = "unique"
column = "credit_code"
[[checks]]
type = "expression"
expression = "dishonest_hits + restricted_hits <= court_records"
*/
WITH persons AS (
    SELECT DISTINCT credit_code, id_card FROM clean.persons WHERE id_card IS NOT NULL
),
hits AS (
    SELECT party_credit_code AS credit_code, record_id, list_type, status, amount, filing_date,
           'enterprise' AS via
    FROM clean.court_records
    WHERE party_type = 'enterprise' AND party_credit_code IS NOT NULL
    UNION ALL
    SELECT p.credit_code, c.record_id, c.list_type, c.status, c.amount, c.filing_date,
           'person' AS via
    FROM clean.court_records c
    JOIN persons p ON p.id_card = c.party_id_card
    WHERE c.party_type = 'person'
)
SELECT
    credit_code,
    COUNT(DISTINCT record_id) AS court_records,
    COUNT(DISTINCT CASE WHEN via = 'enterprise' THEN record_id END) AS enterprise_records,
    COUNT(DISTINCT CASE WHEN via = 'person' THEN record_id END) AS person_records,
    COUNT(DISTINCT CASE WHEN list_type = 'dishonest' THEN record_id END) AS dishonest_hits,
    COUNT(DISTINCT CASE WHEN list_type = 'restricted' THEN record_id END) AS restricted_hits,
    COUNT(DISTINCT CASE WHEN status IN ('open', 'enforcing') THEN record_id END) AS open_cases,
    SUM(COALESCE(amount, 0)) AS court_amount,
    DATE_DIFF('day', MAX(filing_date), DATE '{{ ds }}') AS days_since_last_record
FROM hits
WHERE filing_date <= DATE '{{ ds }}'
GROUP BY credit_code

-- device_features: per application, how many applicants and enterprises share its device
-- (IMEI), SIM (ICCID) and IP — the signature of fraud rings — and the applicant's velocity.
/* config
description = "Applicants and enterprises per IMEI, ICCID and IP; applications per applicant"
[[checks]]
type = "unique"
column = "application_id"
[[checks]]
type = "range"
column = "imei_applicants"
min = 0
[[checks]]
type = "relationships"
column = "application_id"
to = "clean.applications"
*/
WITH apps AS (
    SELECT application_id, credit_code, applicant_id_card, imei, iccid, ip, apply_date
    FROM clean.applications
),
by_imei AS (
    SELECT imei, COUNT(DISTINCT applicant_id_card) AS imei_applicants,
           COUNT(DISTINCT credit_code) AS imei_enterprises
    FROM apps WHERE imei IS NOT NULL GROUP BY imei
),
by_iccid AS (
    SELECT iccid, COUNT(DISTINCT applicant_id_card) AS iccid_applicants,
           COUNT(DISTINCT credit_code) AS iccid_enterprises
    FROM apps WHERE iccid IS NOT NULL GROUP BY iccid
),
by_ip AS (
    SELECT ip, COUNT(DISTINCT applicant_id_card) AS ip_applicants
    FROM apps WHERE ip IS NOT NULL GROUP BY ip
)
SELECT
    a.application_id,
    a.credit_code,
    COALESCE(i.imei_applicants, 0) AS imei_applicants,
    COALESCE(i.imei_enterprises, 0) AS imei_enterprises,
    COALESCE(s.iccid_applicants, 0) AS iccid_applicants,
    COALESCE(s.iccid_enterprises, 0) AS iccid_enterprises,
    COALESCE(p.ip_applicants, 0) AS ip_applicants,
    CASE WHEN COALESCE(i.imei_applicants, 0) > 1 OR COALESCE(s.iccid_applicants, 0) > 1
         THEN 1 ELSE 0 END AS shared_device,
    COUNT(*) OVER (PARTITION BY a.applicant_id_card) AS applicant_applications,
    ROW_NUMBER() OVER (PARTITION BY a.applicant_id_card ORDER BY a.apply_date, a.application_id)
        AS applicant_application_seq
FROM apps a
LEFT JOIN by_imei i ON i.imei = a.imei
LEFT JOIN by_iccid s ON s.iccid = a.iccid
LEFT JOIN by_ip p ON p.ip = a.ip

//! The source contracts the generator writes into `jobs/ingest/`, one per source, as
//! `src/ingest/contract.rs` parses them. Every personal field (names, phones, ID cards,
//! IMEIs, ICCIDs, IPs, personal bank cards) is tokenized or masked; a test checks it.

use super::SourceKind;

const ENTERPRISES: &str = r#"kind = "ingest"
name = "enterprises"
description = "Business registry feed (工商登记): one row per enterprise; updated records are re-sent with a later updated_at."

[source]
path = "@DATA@/{date}/enterprises.csv"
format = "csv"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["credit_code"], keep_latest_by = "updated_at" }

[[columns]]
name = "credit_code"
type = "string"
required = true
clean = ["trim", "halfwidth", "upper"]
check = "credit_code"
description = "Unified social credit code (GB 32100)"

[[columns]]
name = "name"
type = "string"
required = true
clean = ["trim", "halfwidth"]

[[columns]]
name = "entity_type"
from = "type"
type = "string"
clean = ["trim"]
map = { "有限责任公司" = "llc", "股份有限公司" = "joint_stock", "个体工商户" = "sole_proprietor" }
accepted = ["llc", "joint_stock", "sole_proprietor"]

[[columns]]
name = "industry"
type = "string"
clean = ["trim", "upper"]
description = "GB/T 4754-2017 section letter"
accepted = [@LETTERS@]
map = { @INDUSTRY_MAP@ }

[[columns]]
name = "province"
type = "string"
required = true
clean = ["trim"]

[[columns]]
name = "city"
type = "string"
clean = ["trim"]

[[columns]]
name = "registered_capital"
type = "float"
clean = ["trim", "halfwidth", "money"]
min = 0
description = "CNY"

[[columns]]
name = "founding_date"
type = "date"
required = true
formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]
min = 19491001

[[columns]]
name = "status"
type = "string"
clean = ["trim"]
map = { "存续" = "active", "在业" = "active", "吊销" = "revoked", "注销" = "deregistered" }
accepted = ["active", "revoked", "deregistered"]

[[columns]]
name = "legal_rep_name"
type = "string"
clean = ["trim"]
pii = "mask"

[[columns]]
name = "legal_rep_id_card"
type = "string"
clean = ["trim", "halfwidth", "upper"]
check = "id_card"
pii = "tokenize"

[[columns]]
name = "employees"
type = "int"
clean = ["trim"]
min = 0
max = 100000

[[columns]]
name = "updated_at"
type = "datetime"
required = true
formats = ["%Y-%m-%d %H:%M:%S"]
"#;

const ENTERPRISE_KYC: &str = r#"kind = "ingest"
name = "enterprise_kyc"
description = "Branch KYC workbook kept by relationship managers: the enterprises onboarded at a branch (about a quarter)."

[source]
path = "@DATA@/{date}/enterprises.xlsx"
format = "xlsx"
sheet = "enterprises"

[rules]
max_reject_rate = 0.05
unique_key = ["credit_code"]

[[columns]]
name = "credit_code"
from = "统一社会信用代码"
type = "string"
required = true
clean = ["trim", "halfwidth", "upper"]
check = "credit_code"

[[columns]]
name = "name"
from = "企业名称"
type = "string"
clean = ["trim"]

[[columns]]
name = "branch"
from = "开户网点"
type = "string"
clean = ["trim"]

[[columns]]
name = "relationship_manager"
from = "客户经理"
type = "string"
clean = ["trim"]
pii = "mask"

[[columns]]
name = "customer_since"
from = "建立关系日期"
type = "date"
formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]

[[columns]]
name = "segment"
from = "客户分层"
type = "string"
clean = ["trim"]
map = { "小微企业" = "micro", "个体工商户" = "sole_proprietor", "中型企业" = "medium" }
accepted = ["micro", "sole_proprietor", "medium"]

[[columns]]
name = "employees"
from = "员工人数"
type = "int"
min = 0
max = 100000

[[columns]]
name = "annual_revenue"
from = "年营业收入"
type = "float"
clean = ["trim", "halfwidth", "money"]
min = 0

[[columns]]
name = "legal_rep_name"
from = "法定代表人"
type = "string"
clean = ["trim"]
pii = "mask"

[[columns]]
name = "legal_rep_id_card"
from = "法人证件号码"
type = "string"
clean = ["trim", "halfwidth", "upper"]
check = "id_card"
pii = "tokenize"

[[columns]]
name = "legal_rep_phone"
from = "法人手机"
type = "string"
clean = ["trim", "halfwidth", "phone"]
pii = "tokenize"

[[columns]]
name = "account"
from = "结算账号"
type = "string"
clean = ["trim", "digits"]
"#;

const PERSONS: &str = r#"kind = "ingest"
name = "persons"
description = "Persons behind the enterprises (legal representatives, shareholders, finance heads) from the core system, in GBK."

[source]
path = "@DATA@/{date}/persons.csv"
format = "csv"
encoding = "gbk"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["person_id"], keep_latest_by = "updated_at" }

[[columns]]
name = "person_id"
from = "客户编号"
type = "string"
required = true
clean = ["trim"]

[[columns]]
name = "name"
from = "姓名"
type = "string"
required = true
clean = ["trim"]
pii = "mask"

[[columns]]
name = "gender"
from = "性别"
type = "string"
clean = ["trim", "upper"]
map = { "男" = "M", "女" = "F", "M" = "M", "F" = "F", "MALE" = "M", "FEMALE" = "F" }
accepted = ["M", "F"]

[[columns]]
name = "id_card"
from = "证件号码"
type = "string"
required = true
clean = ["trim", "halfwidth", "upper"]
check = "id_card"
pii = "tokenize"

[[columns]]
name = "birth_date"
from = "出生日期"
type = "date"
formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]

[[columns]]
name = "age"
from = "年龄"
type = "int"
clean = ["trim"]
min = 18
max = 100

[[columns]]
name = "phone"
from = "手机号码"
type = "string"
required = true
clean = ["trim", "halfwidth", "phone"]
pii = "tokenize"

[[columns]]
name = "credit_code"
from = "所属企业"
type = "string"
required = true
clean = ["trim", "upper"]
check = "credit_code"

[[columns]]
name = "role"
from = "角色"
type = "string"
clean = ["trim"]
map = { "法定代表人" = "legal_rep", "股东" = "shareholder", "财务负责人" = "finance" }
accepted = ["legal_rep", "shareholder", "finance"]

[[columns]]
name = "education"
from = "学历"
type = "string"
clean = ["trim"]

[[columns]]
name = "marital_status"
from = "婚姻状况"
type = "string"
clean = ["trim"]
map = { "已婚" = "married", "未婚" = "single", "离异" = "divorced" }

[[columns]]
name = "updated_at"
from = "更新时间"
type = "datetime"
required = true
formats = ["%Y-%m-%d %H:%M:%S"]
"#;

const APPLICATIONS: &str = r#"kind = "ingest"
name = "applications"
description = "Loan applications of the last three years from the origination system (UTF-8 with BOM); an application is re-sent when its status changes."

[source]
path = "@DATA@/{date}/applications.csv"
format = "csv"
# UTF-8 (the default) with a byte-order mark.

[rules]
max_reject_rate = 0.05
dedupe = { key = ["application_id"], keep_latest_by = "updated_at" }

[[columns]]
name = "application_id"
type = "string"
required = true
clean = ["trim", "upper"]
pattern = "AP[0-9]{14}"

[[columns]]
name = "credit_code"
type = "string"
required = true
clean = ["trim", "halfwidth", "upper"]
check = "credit_code"

[[columns]]
name = "applicant_name"
type = "string"
clean = ["trim"]
pii = "mask"

[[columns]]
name = "applicant_id_card"
type = "string"
required = true
clean = ["trim", "halfwidth", "upper"]
check = "id_card"
pii = "tokenize"

[[columns]]
name = "applicant_phone"
type = "string"
required = true
clean = ["trim", "halfwidth", "phone"]
pii = "tokenize"

[[columns]]
name = "amount"
type = "float"
required = true
clean = ["trim", "halfwidth", "money"]
min = 1000
max = 50000000
description = "Requested amount, CNY"

[[columns]]
name = "apply_date"
type = "date"
required = true
formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]

[[columns]]
name = "product"
type = "string"
clean = ["trim"]
map = { "经营贷" = "operating", "经营性贷款" = "operating", "税易贷" = "tax", "税贷" = "tax", "流水贷" = "cashflow", "发票贷" = "invoice", "票e贷" = "invoice" }
accepted = ["operating", "tax", "cashflow", "invoice"]

[[columns]]
name = "channel"
type = "string"
clean = ["trim", "lower"]
map = { "app" = "app", "手机银行" = "app", "网银" = "ebank", "ebank" = "ebank", "小程序" = "miniprogram", "微信小程序" = "miniprogram", "线下" = "branch", "柜面" = "branch", "客户经理" = "branch" }
accepted = ["app", "ebank", "miniprogram", "branch"]

[[columns]]
name = "term_months"
type = "int"
clean = ["trim", "digits"]
min = 1
max = 60

[[columns]]
name = "imei"
type = "string"
clean = ["trim", "digits"]
check = "imei"
pii = "tokenize"

[[columns]]
name = "iccid"
type = "string"
clean = ["trim", "digits"]
check = "iccid"
pii = "tokenize"

[[columns]]
name = "ip"
type = "string"
clean = ["trim"]
pattern = "[0-9]{1,3}(\\.[0-9]{1,3}){3}"
pii = "tokenize"

[[columns]]
name = "status"
type = "string"
required = true
clean = ["trim", "lower"]
map = { "通过" = "approved", "拒绝" = "rejected", "审批中" = "pending" }
accepted = ["approved", "rejected", "pending"]

[[columns]]
name = "updated_at"
type = "datetime"
required = true
formats = ["%Y-%m-%d %H:%M:%S"]
"#;

const TRANSACTIONS: &str = r#"kind = "ingest"
name = "transactions"
description = "Corporate account transactions of the last 180 days from the core banking system, one JSON object per line."

[source]
path = "@DATA@/{date}/transactions.ndjson"
format = "ndjson"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["txn_id"] }

[[columns]]
name = "txn_id"
type = "string"
required = true

[[columns]]
name = "account"
type = "string"
required = true
clean = ["trim", "digits"]

[[columns]]
name = "credit_code"
type = "string"
required = true
clean = ["trim", "upper"]
check = "credit_code"

[[columns]]
name = "ts"
type = "datetime"
required = true
formats = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]

[[columns]]
name = "amount"
type = "float"
required = true
clean = ["trim", "money"]
min = 0

[[columns]]
name = "currency"
type = "string"
clean = ["trim", "upper"]
accepted = ["CNY"]

[[columns]]
name = "direction"
type = "string"
required = true
clean = ["trim", "lower"]
map = { "c" = "in", "cr" = "in", "贷" = "in", "credit" = "in", "d" = "out", "dr" = "out", "借" = "out", "debit" = "out" }
accepted = ["in", "out"]

[[columns]]
name = "counterparty_account"
type = "string"
clean = ["trim", "digits"]
pii = "tokenize"
description = "May be a personal bank card"

[[columns]]
name = "counterparty_name"
type = "string"
clean = ["trim"]
pii = "mask"
description = "May be a person"

[[columns]]
name = "channel"
type = "string"
clean = ["trim", "lower"]
map = { "网银" = "ebank", "手机银行" = "mobile", "柜面" = "counter", "代发" = "payroll", "税库" = "tax" }
accepted = ["ebank", "mobile", "counter", "pos", "payroll", "tax"]

[[columns]]
name = "memo"
type = "string"
clean = ["trim"]
"#;

const REPAYMENTS: &str = r#"kind = "ingest"
name = "repayments"
description = "Instalment history of the loans disbursed in the last three years, as the loan system sees it on the night. Label rule in docs/data.md."

[source]
path = "@DATA@/{date}/repayments.parquet"
format = "parquet"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["loan_id", "period_no"] }

[[columns]]
name = "loan_id"
type = "string"
required = true

[[columns]]
name = "application_id"
type = "string"
required = true

[[columns]]
name = "credit_code"
type = "string"
required = true
check = "credit_code"

[[columns]]
name = "period_no"
type = "int"
required = true
min = 1
max = 60

[[columns]]
name = "period"
type = "string"
pattern = "[0-9]{4}-[0-9]{2}"

[[columns]]
name = "due_date"
type = "date"
required = true
formats = ["%Y-%m-%d"]

[[columns]]
name = "due_amount"
type = "float"
required = true
min = 0

[[columns]]
name = "paid_amount"
type = "float"
min = 0

[[columns]]
name = "paid_date"
type = "date"
formats = ["%Y-%m-%d"]

[[columns]]
name = "overdue_days"
type = "int"
required = true
min = 0
max = 3650
"#;

const TAX_FILINGS: &str = r#"kind = "ingest"
name = "tax_filings"
description = "VAT returns of the last twelve months from the tax bureau, fixed width (monthly for general taxpayers, quarterly for small-scale ones); amended returns come later and win."

[source]
path = "@DATA@/{date}/tax_filings.txt"
format = "fixed_width"
header = false
layout = "@DATA@/static/tax_filings.layout"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["credit_code", "period"], keep_latest_by = "filing_date" }

[[columns]]
name = "credit_code"
type = "string"
required = true
clean = ["trim", "upper"]
check = "credit_code"

[[columns]]
name = "taxpayer_name"
type = "string"
clean = ["trim"]

[[columns]]
name = "taxpayer_type"
type = "string"
clean = ["trim", "upper"]
map = { "G" = "general", "S" = "small" }
accepted = ["general", "small"]

[[columns]]
name = "period"
type = "string"
required = true
clean = ["trim"]
pattern = "20[0-9]{2}(0[1-9]|1[0-2])"
description = "YYYYMM of the period's last month"

[[columns]]
name = "sales_amount"
type = "float"
required = true
clean = ["trim", "money"]
min = 0

[[columns]]
name = "tax_payable"
type = "float"
clean = ["trim", "money"]
min = 0

[[columns]]
name = "tax_paid"
type = "float"
clean = ["trim", "money"]
min = 0

[[columns]]
name = "filing_date"
type = "date"
required = true
formats = ["%Y%m%d"]

[[columns]]
name = "status"
type = "string"
clean = ["trim"]
map = { "正常" = "normal", "逾期申报" = "late", "零申报" = "zero" }
accepted = ["normal", "late", "zero"]
"#;

const TELECOM: &str = r#"kind = "ingest"
name = "telecom"
description = "Operator data for the applicants' phones: one row per phone and month of the last six (a phone without usage gives one row with no month)."

[source]
path = "@DATA@/{date}/telecom.json"
format = "json"
records_path = "records"
explode = "monthly"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["phone", "month"] }

[[columns]]
name = "phone"
type = "string"
required = true
clean = ["trim", "halfwidth", "phone"]
pii = "tokenize"

[[columns]]
name = "carrier"
type = "string"
clean = ["trim", "lower"]
map = { "中国移动" = "cmcc", "移动" = "cmcc", "china mobile" = "cmcc", "中国联通" = "cucc", "联通" = "cucc", "china unicom" = "cucc", "中国电信" = "ctcc", "电信" = "ctcc", "china telecom" = "ctcc" }
accepted = ["cmcc", "cucc", "ctcc"]

[[columns]]
name = "tenure_months"
type = "int"
required = true
min = 0
max = 600

[[columns]]
name = "real_name_verified"
from = "real_name"
type = "bool"

[[columns]]
name = "line_status"
from = "status"
type = "string"
clean = ["trim"]
map = { "正常" = "active", "停机" = "suspended" }
accepted = ["active", "suspended"]

[[columns]]
name = "month"
from = "monthly.month"
type = "string"
pattern = "[0-9]{4}-[0-9]{2}"

[[columns]]
name = "spend"
from = "monthly.spend"
type = "float"
min = 0

[[columns]]
name = "calls_out"
from = "monthly.calls_out"
type = "int"
min = 0

[[columns]]
name = "calls_in"
from = "monthly.calls_in"
type = "int"
min = 0

[[columns]]
name = "sms"
from = "monthly.sms"
type = "int"
min = 0
"#;

const CONTACTS: &str = r#"kind = "ingest"
name = "contacts"
description = "Applicants' contact lists (address book and call log), one phone-to-phone edge per row."

[source]
path = "@DATA@/{date}/contacts.csv"
format = "csv"

[rules]
max_reject_rate = 0.05
dedupe = { key = ["owner_phone", "contact_phone"] }

[[columns]]
name = "owner_phone"
type = "string"
required = true
clean = ["trim", "halfwidth", "phone"]
pii = "tokenize"

[[columns]]
name = "contact_phone"
type = "string"
required = true
clean = ["trim", "halfwidth", "phone"]
pii = "tokenize"

[[columns]]
name = "contact_name"
type = "string"
clean = ["trim"]
pii = "mask"

[[columns]]
name = "relation"
type = "string"
clean = ["trim"]
map = { "家人" = "family", "朋友" = "friend", "同事" = "colleague", "客户" = "client", "其他" = "other" }
accepted = ["family", "friend", "colleague", "client", "other"]

[[columns]]
name = "calls_90d"
type = "int"
min = 0
"#;

const COURT_RECORDS: &str = r#"kind = "ingest"
name = "court_records"
description = "Court cases and blacklist entries (失信被执行人, 限制高消费) of the enterprises and their persons, as a JSON array."

[source]
path = "@DATA@/{date}/court_records.json"
format = "json"

[rules]
max_reject_rate = 0.10
dedupe = { key = ["record_id"] }

[[columns]]
name = "record_id"
type = "string"
required = true

[[columns]]
name = "case_no"
type = "string"
required = true
clean = ["trim", "halfwidth"]

[[columns]]
name = "court"
type = "string"
clean = ["trim"]

[[columns]]
name = "case_type"
type = "string"
clean = ["trim"]

[[columns]]
name = "party_type"
type = "string"
required = true
map = { "企业" = "enterprise", "个人" = "person" }
accepted = ["enterprise", "person"]

[[columns]]
name = "party_name"
type = "string"
clean = ["trim"]
pii = "mask"

[[columns]]
name = "party_credit_code"
type = "string"
clean = ["trim", "upper"]
check = "credit_code"

[[columns]]
name = "party_id_card"
type = "string"
clean = ["trim", "upper"]
check = "id_card"
pii = "tokenize"

[[columns]]
name = "role"
type = "string"
clean = ["trim"]

[[columns]]
name = "list_type"
type = "string"
map = { "失信被执行人" = "dishonest", "限制高消费" = "restricted" }
accepted = ["dishonest", "restricted"]

[[columns]]
name = "filing_date"
type = "date"
required = true
formats = ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d"]

[[columns]]
name = "amount"
type = "float"
clean = ["trim", "money"]
min = 0

[[columns]]
name = "status"
type = "string"
clean = ["trim"]
map = { "审理中" = "open", "已结案" = "closed", "执行中" = "enforcing" }
accepted = ["open", "closed", "enforcing"]
"#;

/// The contract text of a source, its paths under `data_dir`.
pub fn contract_toml(kind: SourceKind, data_dir: &str) -> String {
    let template = match kind {
        SourceKind::Enterprises => ENTERPRISES,
        SourceKind::EnterpriseKyc => ENTERPRISE_KYC,
        SourceKind::Persons => PERSONS,
        SourceKind::Applications => APPLICATIONS,
        SourceKind::Transactions => TRANSACTIONS,
        SourceKind::Repayments => REPAYMENTS,
        SourceKind::TaxFilings => TAX_FILINGS,
        SourceKind::Telecom => TELECOM,
        SourceKind::Contacts => CONTACTS,
        SourceKind::CourtRecords => COURT_RECORDS,
    };
    let letters: Vec<String> = super::vocab::INDUSTRIES
        .iter()
        .map(|i| format!("\"{}\"", i.letter))
        .collect();
    let industry_map: Vec<String> = super::vocab::INDUSTRIES
        .iter()
        .map(|i| format!("\"{}\" = \"{}\"", i.name, i.letter))
        .collect();
    template
        .replace("@DATA@", data_dir)
        .replace("@LETTERS@", &letters.join(", "))
        .replace("@INDUSTRY_MAP@", &industry_map.join(", "))
}

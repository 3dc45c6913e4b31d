//! SQL analysis shared by models, `panorama query` and checks: the run-date placeholders,
//! read-only validation, warehouse table references (with the `dt` predicates that select
//! their partitions), and the rewrite handed to polars.
//!
//! Nothing here touches the warehouse: references come out as name parts, and the rewrite
//! takes the registered name of each reference from the caller.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::ControlFlow;

use chrono::{Months, NaiveDate};
use sqlparser::ast::{
    BinaryOperator, DataType, DateTimeField, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, ObjectName, ObjectNamePart, Query, Select, Statement, TableAlias, TableFactor,
    TableWithJoins, UnaryOperator, Value, Visit, VisitMut, Visitor, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::{Parser, ParserOptions};

/// A place in the SQL text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

/// A problem in a SQL text, with where it is when known.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlError {
    pub message: String,
    pub pos: Option<Pos>,
    /// Whether the statement was refused because it would write (exit code 2 like the others,
    /// but worded differently).
    pub read_only: bool,
}

impl SqlError {
    pub fn at(message: impl Into<String>, pos: Option<Pos>) -> SqlError {
        SqlError {
            message: message.into(),
            pos,
            read_only: false,
        }
    }

    /// The message, then the offending line of `sql` with a caret under the column.
    pub fn render(&self, sql: &str) -> String {
        let Some(pos) = self.pos.filter(|p| p.line > 0) else {
            return self.message.clone();
        };
        let Some(line) = sql.lines().nth(pos.line as usize - 1) else {
            return self.message.clone();
        };
        let col = (pos.column.max(1) as usize - 1).min(line.chars().count());
        let lead: String = line
            .chars()
            .take(col)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        format!(
            "{} (line {}, column {})\n  {}\n  {}^",
            self.message, pos.line, pos.column, line, lead
        )
    }
}

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

// ---------------------------------------------------------------------------------------------
// Placeholders

/// Values for `{{ name }}` placeholders: `ds`, `ds_nodash`, `run_date`, `run_id` and the
/// matrix values of a job family.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pub values: BTreeMap<String, String>,
}

impl Params {
    /// The standard placeholders for a run date.
    pub fn for_date(date: NaiveDate) -> Params {
        let mut values = BTreeMap::new();
        let ds = date.format("%Y-%m-%d").to_string();
        values.insert("ds".to_string(), ds.clone());
        values.insert("run_date".to_string(), ds);
        values.insert("ds_nodash".to_string(), date.format("%Y%m%d").to_string());
        Params { values }
    }

    pub fn with(mut self, key: &str, value: &str) -> Params {
        self.values.insert(key.to_string(), value.to_string());
        self
    }
}

/// Replaces every `{{ name }}` by its value. Placeholders stand for values (dates, matrix
/// values), never for table names: references must stay literal so that dependencies can be
/// read from the text. An unknown name is an error that lists the known ones.
pub fn render(sql: &str, params: &Params) -> Result<String, SqlError> {
    let comments = comment_ranges(sql);
    let in_comment = |at: usize| comments.iter().any(|r| r.contains(&at));
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    let mut consumed = 0usize;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let known = after
            .find("}}")
            .is_some_and(|j| params.values.contains_key(after[..j].trim()));
        if !known && in_comment(consumed + i) {
            // An unknown placeholder commented out is text: `-- AND dt = '{{ old_name }}'`.
            out.push_str("{{");
            consumed += i + 2;
            rest = after;
            continue;
        }
        let Some(j) = after.find("}}") else {
            return Err(SqlError::at(
                "`{{` without a closing `}}`",
                Some(pos_of(sql, consumed + i)),
            ));
        };
        let name = after[..j].trim();
        match params.values.get(name) {
            Some(v) => out.push_str(v),
            None => {
                let known: Vec<&str> = params.values.keys().map(String::as_str).collect();
                return Err(SqlError::at(
                    format!(
                        "unknown placeholder {{{{ {name} }}}} (known: {})",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                    Some(pos_of(sql, consumed + i)),
                ));
            }
        }
        consumed += i + 2 + j + 2;
        rest = &after[j + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Byte ranges of the SQL comments in `sql` (`-- …` to the line's end, `/* … */`), outside
/// quoted text and names.
fn comment_ranges(sql: &str) -> Vec<std::ops::Range<usize>> {
    let b = sql.as_bytes();
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let end = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
                ranges.push(i..end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = sql[i + 2..].find("*/").map_or(b.len(), |n| i + 2 + n + 2);
                ranges.push(i..end);
                i = end;
            }
            _ => i += 1,
        }
    }
    ranges
}

/// Replaces every placeholder by a neutral date literal's content, for static analysis
/// (dependencies) where the run date is not known yet.
pub fn render_for_analysis(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        match after.find("}}") {
            Some(j) => {
                out.push_str("2000-01-01");
                rest = &after[j + 2..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn pos_of(text: &str, byte: usize) -> Pos {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() as u64 + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0) as u64
        + 1;
    Pos { line, column: col }
}

// ---------------------------------------------------------------------------------------------
// Partition selection by `dt`

/// A condition on a partition's `dt`, taken from the query's WHERE clause.
#[derive(Debug, Clone, PartialEq)]
pub enum DtPred {
    Cmp(CmpOp, NaiveDate),
    In(Vec<NaiveDate>),
    And(Box<DtPred>, Box<DtPred>),
    Or(Box<DtPred>, Box<DtPred>),
    Not(Box<DtPred>),
    Const(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl DtPred {
    pub fn eval(&self, d: NaiveDate) -> bool {
        match self {
            DtPred::Cmp(op, v) => match op {
                CmpOp::Eq => d == *v,
                CmpOp::Ne => d != *v,
                CmpOp::Lt => d < *v,
                CmpOp::Le => d <= *v,
                CmpOp::Gt => d > *v,
                CmpOp::Ge => d >= *v,
            },
            DtPred::In(vs) => vs.contains(&d),
            DtPred::And(a, b) => a.eval(d) && b.eval(d),
            DtPred::Or(a, b) => a.eval(d) || b.eval(d),
            DtPred::Not(a) => !a.eval(d),
            DtPred::Const(b) => *b,
        }
    }

    fn and(self, other: DtPred) -> DtPred {
        DtPred::And(Box::new(self), Box::new(other))
    }
}

/// Which partitions of a referenced table a query reads.
#[derive(Debug, Clone, PartialEq)]
pub enum DtSel {
    /// No `dt` condition: the latest partition (on or before the run date for models).
    Latest,
    /// A `dt` condition that cannot be evaluated from the text alone: every partition (the
    /// condition still filters the rows).
    All,
    /// The partitions whose `dt` satisfies the condition.
    Where(DtPred),
}

/// One reference to a (possible) warehouse table in a FROM or JOIN.
#[derive(Debug, Clone)]
pub struct TableOcc {
    /// Name parts as written (unquoted parts lower-cased): `["clean", "applications"]`.
    pub parts: Vec<String>,
    pub alias: Option<String>,
    pub pos: Pos,
    pub dt: DtSel,
}

impl TableOcc {
    pub fn written(&self) -> String {
        self.parts.join(".")
    }
}

/// A parsed, read-only statement and its table references.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub statement: Statement,
    /// EXPLAIN around the query (the statement above is the query itself).
    pub explain: bool,
    /// `SHOW TABLES`.
    pub show_tables: bool,
    /// Table references that are not CTE names, in text order.
    pub tables: Vec<TableOcc>,
    /// Table functions in FROM (`read_parquet(...)`), by name.
    pub table_functions: Vec<(String, Pos)>,
}

/// First keywords of statements that write or change something; refused before parsing so that
/// even a statement the parser does not know is refused as a write, not as a syntax error.
const WRITE_KEYWORDS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "REPLACE",
    "CREATE",
    "DROP",
    "ALTER",
    "TRUNCATE",
    "COPY",
    "GRANT",
    "REVOKE",
    "ATTACH",
    "DETACH",
    "VACUUM",
    "INSTALL",
    "LOAD",
    "CALL",
    "SET",
    "PRAGMA",
    "EXPORT",
    "IMPORT",
    "UNLOAD",
    "PUT",
    "REMOVE",
    "RENAME",
    "COMMENT",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "USE",
    "EXECUTE",
    "PREPARE",
    "DEALLOCATE",
    "REFRESH",
    "CACHE",
    "UNCACHE",
    "OPTIMIZE",
    "MSCK",
    "ANALYZE",
];

const READ_ONLY_HINT: &str =
    "queries are read-only: only SELECT, WITH … SELECT, VALUES, EXPLAIN and SHOW TABLES run";

fn read_only_error(keyword: &str, pos: Option<Pos>) -> SqlError {
    SqlError {
        message: format!("{keyword} is refused: {READ_ONLY_HINT}"),
        pos,
        read_only: true,
    }
}

/// Skips white space and comments; returns the byte offset of the first token.
fn first_token_offset(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && (b[i] as char).is_whitespace() {
            i += 1;
        }
        if b[i..].starts_with(b"--") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            match sql[i + 2..].find("*/") {
                Some(j) => i += 2 + j + 2,
                None => return b.len(),
            }
        } else {
            return i;
        }
    }
}

fn parser_options() -> ParserOptions {
    ParserOptions {
        trailing_commas: true,
        ..Default::default()
    }
}

/// Parses one read-only statement and finds its table references.
pub fn analyze(sql: &str) -> Result<Analysis, SqlError> {
    let start = first_token_offset(sql);
    let word: String = sql[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect::<String>()
        .to_ascii_uppercase();
    if word.is_empty() && start >= sql.len() {
        return Err(SqlError::at("empty query", None));
    }
    if WRITE_KEYWORDS.contains(&word.as_str()) {
        return Err(read_only_error(&word, Some(pos_of(sql, start))));
    }
    let statements = Parser::new(&GenericDialect)
        .with_options(parser_options())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| parser_error(&e))?;
    // A write hidden after a first, harmless statement is refused as a write.
    for s in &statements {
        if let Some(kw) = write_kind(s) {
            return Err(read_only_error(kw, None));
        }
    }
    if statements.len() != 1 {
        return Err(SqlError::at(
            format!("one statement at a time (found {})", statements.len()),
            None,
        ));
    }
    let statement = statements.into_iter().next().unwrap();
    let (statement, explain, show_tables) = match statement {
        Statement::Query(q) => {
            check_no_into(&q)?;
            (Statement::Query(q), false, false)
        }
        Statement::Explain { statement, .. } => match *statement {
            Statement::Query(q) => {
                check_no_into(&q)?;
                (Statement::Query(q), true, false)
            }
            other => {
                let kw = write_kind(&other).unwrap_or("this statement");
                return Err(read_only_error(kw, None));
            }
        },
        Statement::ShowTables { .. } => (Statement::Query(Box::new(empty_query())), false, true),
        other => {
            let kw = statement_keyword(&other);
            return Err(read_only_error(&kw, Some(pos_of(sql, start))));
        }
    };
    let mut analysis = Analysis {
        statement,
        explain,
        show_tables,
        tables: Vec::new(),
        table_functions: Vec::new(),
    };
    if !show_tables {
        collect_tables(&mut analysis);
    }
    Ok(analysis)
}

fn empty_query() -> Query {
    match Parser::new(&GenericDialect)
        .try_with_sql("SELECT 1")
        .and_then(|mut p| p.parse_statement())
    {
        Ok(Statement::Query(q)) => *q,
        _ => unreachable!("SELECT 1 parses"),
    }
}

fn check_no_into(q: &Query) -> Result<(), SqlError> {
    let mut into = false;
    let _ = q.visit(&mut SelectVisitor(|s: &Select| {
        if s.into.is_some() {
            into = true;
        }
    }));
    if into {
        return Err(read_only_error("SELECT … INTO", None));
    }
    Ok(())
}

struct SelectVisitor<F: FnMut(&Select)>(F);

impl<F: FnMut(&Select)> Visitor for SelectVisitor<F> {
    type Break = ();
    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        (self.0)(s);
        ControlFlow::Continue(())
    }
}

fn write_kind(s: &Statement) -> Option<&'static str> {
    Some(match s {
        Statement::Query(_) | Statement::Explain { .. } | Statement::ShowTables { .. } => {
            return None
        }
        Statement::Insert(_) => "INSERT",
        Statement::Update(_) => "UPDATE",
        Statement::Delete(_) => "DELETE",
        Statement::Merge(_) => "MERGE",
        Statement::Drop { .. } => "DROP",
        Statement::Truncate(_) => "TRUNCATE",
        Statement::Copy { .. } => "COPY",
        Statement::CreateTable(_) => "CREATE TABLE",
        Statement::CreateView(_) => "CREATE VIEW",
        Statement::AlterTable(_) => "ALTER TABLE",
        _ => return None,
    })
}

fn statement_keyword(s: &Statement) -> String {
    if let Some(k) = write_kind(s) {
        return k.to_string();
    }
    let text = s.to_string();
    let w: String = text
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase();
    if w.is_empty() {
        "this statement".into()
    } else {
        w
    }
}

/// A parser error with its position pulled out of the message (`... at Line: 1, Column: 8`).
fn parser_error(e: &sqlparser::parser::ParserError) -> SqlError {
    use sqlparser::parser::ParserError;
    let raw = match e {
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s.clone(),
        ParserError::RecursionLimitExceeded => "the query nests too deeply".to_string(),
    };
    let mut pos = None;
    let mut message = raw.clone();
    if let Some(i) = raw.rfind(" at Line: ") {
        let tail = &raw[i + " at Line: ".len()..];
        let mut it = tail.split(", Column: ");
        if let (Some(l), Some(c)) = (it.next(), it.next()) {
            let c: String = c.chars().take_while(|c| c.is_ascii_digit()).collect();
            if let (Ok(line), Ok(column)) = (l.trim().parse(), c.parse()) {
                pos = Some(Pos { line, column });
                message = raw[..i].to_string();
            }
        }
    }
    SqlError::at(format!("SQL syntax error: {message}"), pos)
}

// ---------------------------------------------------------------------------------------------
// References

fn ident_name(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

fn name_parts(n: &ObjectName) -> Vec<String> {
    n.0.iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => ident_name(i),
            ObjectNamePart::Function(f) => f.to_string(),
        })
        .collect()
}

fn name_pos(n: &ObjectName) -> Pos {
    match n.0.first().and_then(|p| p.as_ident()) {
        Some(i) => Pos {
            line: i.span.start.line,
            column: i.span.start.column,
        },
        None => Pos { line: 0, column: 0 },
    }
}

struct Collector {
    /// CTE names of the queries being visited, outermost first: a CTE shadows a table of the
    /// same bare name in its own query and the queries nested in it, not elsewhere.
    scopes: Vec<BTreeSet<String>>,
    tables: Vec<TableOcc>,
    functions: Vec<(String, Pos)>,
    /// `dt` selections per reference position, filled select by select.
    dt: HashMap<Pos, DtSel>,
}

impl Collector {
    fn ctes(&self) -> BTreeSet<String> {
        self.scopes.iter().flatten().cloned().collect()
    }
}

impl Visitor for Collector {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let names = q
            .with
            .iter()
            .flat_map(|w| w.cte_tables.iter().map(|c| ident_name(&c.alias.name)))
            .collect();
        self.scopes.push(names);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name, alias, args, ..
        } = tf
        {
            let parts = name_parts(name);
            let pos = name_pos(name);
            if args.is_some() {
                self.functions.push((parts.join("."), pos));
            } else if !(parts.len() == 1 && self.scopes.iter().any(|s| s.contains(&parts[0]))) {
                self.tables.push(TableOcc {
                    parts,
                    alias: alias.as_ref().map(|a| ident_name(&a.name)),
                    pos,
                    dt: DtSel::Latest,
                });
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        // The warehouse references of this SELECT's FROM (not those of subqueries).
        let mut refs: Vec<(Pos, Vec<String>, Option<String>)> = Vec::new();
        let ctes = self.ctes();
        for twj in &s.from {
            from_refs(twj, &ctes, &mut refs);
        }
        if refs.is_empty() {
            return ControlFlow::Continue(());
        }
        let mut preds: HashMap<Pos, Vec<DtPred>> = HashMap::new();
        let mut all: BTreeSet<Pos> = BTreeSet::new();
        if let Some(w) = &s.selection {
            let mut conjuncts = Vec::new();
            split_and(w, &mut conjuncts);
            for c in conjuncts {
                let mut quals = Vec::new();
                dt_mentions(c, &mut quals);
                if quals.is_empty() {
                    continue;
                }
                let targets = targets_of(&quals, &refs);
                if targets.is_empty() {
                    continue;
                }
                let same_var = quals.iter().all(|q| q == &quals[0]);
                match (same_var, to_pred(c)) {
                    (true, Some(p)) => {
                        for t in targets {
                            preds.entry(t).or_default().push(p.clone());
                        }
                    }
                    _ => all.extend(targets),
                }
            }
        }
        // `dt` in a JOIN condition: read every partition (the condition still applies).
        for twj in &s.from {
            for j in &twj.joins {
                if let Some(e) = join_on(&j.join_operator) {
                    let mut quals = Vec::new();
                    dt_mentions(e, &mut quals);
                    all.extend(targets_of(&quals, &refs));
                }
            }
        }
        for (pos, _, _) in &refs {
            let sel = if all.contains(pos) {
                DtSel::All
            } else if let Some(ps) = preds.remove(pos) {
                let mut it = ps.into_iter();
                let first = it.next().unwrap();
                DtSel::Where(it.fold(first, DtPred::and))
            } else {
                continue;
            };
            self.dt.insert(*pos, sel);
        }
        ControlFlow::Continue(())
    }
}

fn join_on(op: &sqlparser::ast::JoinOperator) -> Option<&Expr> {
    use sqlparser::ast::{JoinConstraint, JoinOperator as J};
    let c = match op {
        J::Join(c)
        | J::Inner(c)
        | J::Left(c)
        | J::LeftOuter(c)
        | J::Right(c)
        | J::RightOuter(c)
        | J::FullOuter(c)
        | J::CrossJoin(c)
        | J::Semi(c)
        | J::LeftSemi(c)
        | J::RightSemi(c)
        | J::Anti(c)
        | J::LeftAnti(c)
        | J::RightAnti(c)
        | J::StraightJoin(c) => c,
        _ => return None,
    };
    match c {
        JoinConstraint::On(e) => Some(e),
        _ => None,
    }
}

fn from_refs(
    twj: &TableWithJoins,
    ctes: &BTreeSet<String>,
    out: &mut Vec<(Pos, Vec<String>, Option<String>)>,
) {
    factor_refs(&twj.relation, ctes, out);
    for j in &twj.joins {
        factor_refs(&j.relation, ctes, out);
    }
}

fn factor_refs(
    tf: &TableFactor,
    ctes: &BTreeSet<String>,
    out: &mut Vec<(Pos, Vec<String>, Option<String>)>,
) {
    match tf {
        TableFactor::Table {
            name, alias, args, ..
        } if args.is_none() => {
            let parts = name_parts(name);
            if parts.len() == 1 && ctes.contains(&parts[0]) {
                return;
            }
            out.push((
                name_pos(name),
                parts,
                alias.as_ref().map(|a| ident_name(&a.name)),
            ));
        }
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => from_refs(table_with_joins, ctes, out),
        _ => {}
    }
}

/// The references a `dt` mention applies to: `a.dt` to the one aliased (or named) `a`, a bare
/// `dt` to every reference of the FROM.
fn targets_of(quals: &[Option<String>], refs: &[(Pos, Vec<String>, Option<String>)]) -> Vec<Pos> {
    let mut out = Vec::new();
    for q in quals {
        for (pos, parts, alias) in refs {
            let hit = match q {
                None => true,
                Some(q) => match alias {
                    Some(a) => a == q,
                    None => parts.last() == Some(q) || &parts.join(".") == q,
                },
            };
            if hit && !out.contains(pos) {
                out.push(*pos);
            }
        }
    }
    out
}

fn split_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            split_and(left, out);
            split_and(right, out);
        }
        Expr::Nested(inner) => {
            // `(a AND b)` splits too; anything else stays one conjunct.
            if matches!(
                **inner,
                Expr::BinaryOp {
                    op: BinaryOperator::And,
                    ..
                }
            ) {
                split_and(inner, out);
            } else {
                out.push(e);
            }
        }
        _ => out.push(e),
    }
}

/// The qualifiers of every `dt` column mentioned in `e` (None for a bare `dt`), not looking
/// into subqueries (their `dt` belongs to their own tables).
fn dt_mentions(e: &Expr, out: &mut Vec<Option<String>>) {
    outside_subqueries(e, |e| match e {
        Expr::Identifier(i) if ident_name(i) == "dt" => out.push(None),
        Expr::CompoundIdentifier(ids)
            if ids.last().is_some_and(|i| ident_name(i) == "dt") && ids.len() >= 2 =>
        {
            let q: Vec<String> = ids[..ids.len() - 1].iter().map(ident_name).collect();
            out.push(Some(q.join(".")));
        }
        _ => {}
    });
}

/// Calls `f` on every expression of `e` in pre-order, except those inside subqueries (which
/// belong to their own tables).
fn outside_subqueries(e: &Expr, f: impl FnMut(&Expr)) {
    struct V<F>(F, usize);
    impl<F: FnMut(&Expr)> Visitor for V<F> {
        type Break = ();
        fn pre_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.1 += 1;
            ControlFlow::Continue(())
        }
        fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
            self.1 -= 1;
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            if self.1 == 0 {
                (self.0)(e);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = e.visit(&mut V(f, 0));
}

fn is_dt(e: &Expr) -> bool {
    match e {
        Expr::Identifier(i) => ident_name(i) == "dt",
        Expr::CompoundIdentifier(ids) => ids.last().is_some_and(|i| ident_name(i) == "dt"),
        Expr::Nested(inner) => is_dt(inner),
        // `CAST(dt AS DATE)`, `dt::date`, `CAST(dt AS VARCHAR)`: still the partition date.
        Expr::Cast { expr, .. } => is_dt(expr),
        _ => false,
    }
}

fn cmp_op(op: &BinaryOperator) -> Option<CmpOp> {
    Some(match op {
        BinaryOperator::Eq => CmpOp::Eq,
        BinaryOperator::NotEq => CmpOp::Ne,
        BinaryOperator::Lt => CmpOp::Lt,
        BinaryOperator::LtEq => CmpOp::Le,
        BinaryOperator::Gt => CmpOp::Gt,
        BinaryOperator::GtEq => CmpOp::Ge,
        _ => return None,
    })
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        o => o,
    }
}

/// A condition over `dt` and literals only, as a predicate; None when it holds anything else.
pub fn to_pred(e: &Expr) -> Option<DtPred> {
    match e {
        Expr::Nested(inner) => to_pred(inner),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => Some(to_pred(left)?.and(to_pred(right)?)),
            BinaryOperator::Or => Some(DtPred::Or(
                Box::new(to_pred(left)?),
                Box::new(to_pred(right)?),
            )),
            _ => {
                let op = cmp_op(op)?;
                if is_dt(left) {
                    Some(DtPred::Cmp(op, lit_date(right)?))
                } else if is_dt(right) {
                    Some(DtPred::Cmp(flip(op), lit_date(left)?))
                } else {
                    None
                }
            }
        },
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => Some(DtPred::Not(Box::new(to_pred(expr)?))),
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } if is_dt(expr) => {
            let p =
                DtPred::Cmp(CmpOp::Ge, lit_date(low)?).and(DtPred::Cmp(CmpOp::Le, lit_date(high)?));
            Some(if *negated {
                DtPred::Not(Box::new(p))
            } else {
                p
            })
        }
        Expr::InList {
            expr,
            list,
            negated,
        } if is_dt(expr) => {
            let vals = list.iter().map(lit_date).collect::<Option<Vec<_>>>()?;
            let p = DtPred::In(vals);
            Some(if *negated {
                DtPred::Not(Box::new(p))
            } else {
                p
            })
        }
        Expr::IsNotNull(x) if is_dt(x) => Some(DtPred::Const(true)),
        Expr::IsNull(x) if is_dt(x) => Some(DtPred::Const(false)),
        _ => None,
    }
}

fn is_date_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date
            | DataType::Timestamp(..)
            | DataType::Datetime(_)
            | DataType::Text
            | DataType::Varchar(_)
            | DataType::String(_)
    )
}

/// A date written as a literal: `'2026-11-26'`, `DATE '2026-11-26'`, `CAST('…' AS DATE)`,
/// `'…'::date`, `DATE('…')`, plus or minus `INTERVAL 'n days|weeks|months|years'`.
pub fn lit_date(e: &Expr) -> Option<NaiveDate> {
    match e {
        Expr::Nested(inner) => lit_date(inner),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => parse_date_text(s),
            _ => None,
        },
        Expr::TypedString(t) if is_date_type(&t.data_type) => match &t.value.value {
            Value::SingleQuotedString(s) => parse_date_text(s),
            _ => None,
        },
        Expr::Cast {
            expr, data_type, ..
        } if is_date_type(data_type) => lit_date(expr),
        Expr::Function(f) => {
            let name = name_parts(&f.name).join(".");
            let args = match &f.args {
                FunctionArguments::List(l) => &l.args[..],
                _ => &[],
            };
            match (name.as_str(), args) {
                ("date", [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))]) => lit_date(x),
                _ => None,
            }
        }
        Expr::BinaryOp { left, op, right } => {
            let base = lit_date(left)?;
            let Expr::Interval(iv) = &**right else {
                return None;
            };
            let (n, unit) = interval_parts(iv)?;
            let sign = match op {
                BinaryOperator::Plus => 1,
                BinaryOperator::Minus => -1,
                _ => return None,
            };
            shift(base, sign * n, unit)
        }
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Day,
    Week,
    Month,
    Year,
}

fn interval_parts(iv: &sqlparser::ast::Interval) -> Option<(i64, Unit)> {
    let Expr::Value(v) = &*iv.value else {
        return None;
    };
    let text = match &v.value {
        Value::SingleQuotedString(s) => s.clone(),
        Value::Number(n, _) => n.to_string(),
        _ => return None,
    };
    let mut words = text.split_whitespace();
    let n: i64 = words.next()?.parse().ok()?;
    let unit_word = match words.next() {
        Some(w) => w.to_ascii_lowercase(),
        None => match iv.leading_field.as_ref()? {
            DateTimeField::Day | DateTimeField::Days => "day".into(),
            DateTimeField::Week(_) | DateTimeField::Weeks => "week".into(),
            DateTimeField::Month | DateTimeField::Months => "month".into(),
            DateTimeField::Year | DateTimeField::Years => "year".into(),
            _ => return None,
        },
    };
    if words.next().is_some() {
        return None;
    }
    let unit = match unit_word.trim_end_matches('s') {
        "day" | "d" => Unit::Day,
        "week" | "w" => Unit::Week,
        "month" | "mon" | "mo" => Unit::Month,
        "year" | "y" => Unit::Year,
        _ => return None,
    };
    Some((n, unit))
}

fn shift(d: NaiveDate, n: i64, unit: Unit) -> Option<NaiveDate> {
    match unit {
        // Checked throughout: `INTERVAL '9223372036854775807 days'` panicked.
        Unit::Day => d.checked_add_signed(chrono::Duration::try_days(n)?),
        Unit::Week => d.checked_add_signed(chrono::Duration::try_days(n.checked_mul(7)?)?),
        Unit::Month | Unit::Year => {
            let months = if unit == Unit::Year {
                n.checked_mul(12)?
            } else {
                n
            };
            let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
            if months >= 0 {
                d.checked_add_months(m)
            } else {
                d.checked_sub_months(m)
            }
        }
    }
}

/// The day of a date text, or of a timestamp text at midnight. A later time of day is no
/// day: `dt < TIMESTAMP '2026-11-19 12:00:00'` holds for dt = 2026-11-19, which pruning by
/// the day would have dropped.
fn parse_date_text(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let head = s.get(..10).unwrap_or(s);
    let rest = s.get(10..).unwrap_or("");
    let midnight = rest.is_empty()
        || rest
            .strip_prefix([' ', 'T'])
            .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| matches!(b, b'0' | b':' | b'.')));
    if !midnight {
        return None;
    }
    NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()
}

fn collect_tables(a: &mut Analysis) {
    let mut c = Collector {
        scopes: Vec::new(),
        tables: Vec::new(),
        functions: Vec::new(),
        dt: HashMap::new(),
    };
    let _ = a.statement.visit(&mut c);
    for t in &mut c.tables {
        if let Some(sel) = c.dt.remove(&t.pos) {
            t.dt = sel;
        }
    }
    a.tables = c.tables;
    a.table_functions = c.functions;
}

// ---------------------------------------------------------------------------------------------
// Rewrite

/// How one reference is handed to polars: the registered table name, and the alias the query
/// sees (its bare table name when it had none, so that `applications.amount` keeps working).
#[derive(Debug, Clone)]
pub struct Binding {
    pub registered: String,
    pub layer: String,
    pub table: String,
}

/// What `CURRENT_DATE` and `NOW()` mean for a statement: the run date (models, `--date`) and
/// the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub today: NaiveDate,
    pub now: chrono::NaiveDateTime,
}

impl Clock {
    pub fn system() -> Clock {
        let now = chrono::Local::now().naive_local();
        Clock {
            today: now.date(),
            now,
        }
    }
}

/// Whether a query joins a subquery or a CTE without a condition (`CROSS JOIN`, or listed
/// with commas): polars 0.55's projection pushdown then drops an aggregate whose columns the
/// query does not use and joins its input rows instead (2 × 3 rows for 2 × 1), so such
/// queries run without it. Warehouse tables listed with commas (an equi-join in WHERE) are
/// not at risk and keep it. `tables` are the positions of the warehouse table references.
pub fn has_cross_join(stmt: &Statement, tables: &BTreeSet<Pos>) -> bool {
    struct V<'a>(bool, &'a BTreeSet<Pos>);
    impl Visitor for V<'_> {
        type Break = ();
        fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
            let unconditioned = s.from.len() > 1
                || s.from.iter().any(|twj| {
                    twj.joins.iter().any(|j| {
                        matches!(j.join_operator, sqlparser::ast::JoinOperator::CrossJoin(_))
                    })
                });
            let warehouse_table = |tf: &TableFactor| {
                matches!(tf, TableFactor::Table { name, args: None, .. }
                    if self.1.contains(&name_pos(name)))
            };
            let other = s.from.iter().any(|twj| {
                !warehouse_table(&twj.relation)
                    || twj.joins.iter().any(|j| !warehouse_table(&j.relation))
            });
            if unconditioned && other {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut v = V(false, tables);
    let _ = Visit::visit(stmt, &mut v);
    v.0
}

/// The statement as polars should run it: references renamed to their registered tables,
/// `layer.table.column` shortened to `table.column`, and the functions Panorama adds
/// (DATE_TRUNC, DATE_DIFF/DATEDIFF, APPROX_COUNT_DISTINCT) spelled in what polars knows.
pub fn rewrite(
    a: &Analysis,
    bindings: &HashMap<Pos, Binding>,
    clock: &Clock,
) -> Result<String, SqlError> {
    let mut stmt = a.statement.clone();
    name_result_expressions(&mut stmt);
    let mut qualified: BTreeSet<(String, String)> = BTreeSet::new();
    for b in bindings.values() {
        qualified.insert((b.layer.clone(), b.table.clone()));
    }
    struct R<'a> {
        bindings: &'a HashMap<Pos, Binding>,
        qualified: &'a BTreeSet<(String, String)>,
        clock: &'a Clock,
        error: Option<SqlError>,
        /// Per enclosing SELECT, its named windows (`WINDOW w AS (…)`).
        named_windows: Vec<HashMap<String, sqlparser::ast::WindowSpec>>,
    }
    impl VisitorMut for R<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
            parenthesize_set_operations(q.body.as_mut());
            order_set_operation_by_names(q);
            if let Err(err) = split_grouped_windows(q) {
                self.error = Some(err);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Err(err) = exists_own_conditions_first(e) {
                self.error = Some(err);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_select(&mut self, s: &mut Select) -> ControlFlow<()> {
            if let Err(e) = refuse_unsupported_select(s) {
                self.error = Some(e);
                return ControlFlow::Break(());
            }
            alias_clashing_projections(s);
            having_on_group_keys_to_where(s);
            guard_dt_conditions(s);
            let mut named = HashMap::new();
            for sqlparser::ast::NamedWindowDefinition(name, def) in &s.named_window {
                if let sqlparser::ast::NamedWindowExpr::WindowSpec(spec) = def {
                    named.insert(ident_name(name), spec.clone());
                }
            }
            self.named_windows.push(named);
            for twj in &mut s.from {
                if let Err(e) =
                    push_joined_table_conditions(twj).and_then(|()| refuse_full_using(twj))
                {
                    self.error = Some(e);
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }

        fn post_visit_select(&mut self, _s: &mut Select) -> ControlFlow<()> {
            self.named_windows.pop();
            ControlFlow::Continue(())
        }

        fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
            if let TableFactor::Table {
                name, alias, args, ..
            } = tf
            {
                if args.is_some() {
                    return ControlFlow::Continue(());
                }
                if let Some(b) = self.bindings.get(&name_pos(name)) {
                    *name = ObjectName::from(vec![Ident::new(b.registered.clone())]);
                    if alias.is_none() {
                        *alias = Some(TableAlias {
                            explicit: true,
                            name: Ident::with_quote('"', b.table.clone()),
                            columns: Vec::new(),
                            at: None,
                        });
                    }
                }
            }
            ControlFlow::Continue(())
        }

        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Err(err) = check_typed_literals(e) {
                self.error = Some(err);
                return ControlFlow::Break(());
            }
            whole_mantissa_exponents(e);
            timestamp_literal_casts(e);
            if let Err(err) = date_literals_against_dt(e).and_then(|()| check_interval(e)) {
                self.error = Some(err);
                return ControlFlow::Break(());
            }
            match e {
                Expr::CompoundIdentifier(ids) if ids.len() >= 3 => {
                    let l = ident_name(&ids[0]);
                    let t = ident_name(&ids[1]);
                    if self.qualified.contains(&(l, t)) {
                        ids.remove(0);
                    }
                }
                Expr::Function(_) => {
                    let widen = narrow_integer_call(e);
                    let named = self.named_windows.last();
                    let rewritten = rewrite_window(e, named).and_then(|w| match w {
                        Some(new) => Ok(Some(new)),
                        None => rewrite_function(e, self.clock)
                            .map(|r| r.or_else(|| constant_aggregate(e))),
                    });
                    match rewritten {
                        Ok(Some(new)) => *e = new,
                        Ok(None) => {}
                        Err(err) => {
                            self.error = Some(err);
                            return ControlFlow::Break(());
                        }
                    }
                    if widen {
                        if let Ok(wide) = parse_expr(&format!("CAST({e} AS BIGINT)")) {
                            *e = wide;
                        }
                    }
                }
                // EXTRACT gives 8-bit integers in polars: `EXTRACT(MONTH FROM d) * 100` wrapped.
                Expr::Extract { field, .. } if *field != DateTimeField::Epoch => {
                    if let Ok(wide) = parse_expr(&format!("CAST({e} AS BIGINT)")) {
                        *e = wide;
                    }
                }
                // polars has no EPOCH of a DATE; a date's epoch is its midnight's.
                Expr::Extract {
                    field: DateTimeField::Epoch,
                    expr,
                    ..
                } if !matches!(expr.as_ref(), Expr::Cast { .. }) => {
                    if let Ok(cast) = parse_expr(&format!("CAST(({expr}) AS TIMESTAMP)")) {
                        **expr = cast;
                    }
                }
                Expr::Position { expr, r#in } => {
                    if let Ok(new) =
                        parse_expr(&char_position(&r#in.to_string(), &expr.to_string()))
                    {
                        *e = new;
                    }
                }
                _ => {
                    fold_date_list(e);
                    text_literal_second(e);
                    uniform_number_list(e);
                    if let Some(new) = sql_null_semantics(e) {
                        *e = new;
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut r = R {
        bindings,
        qualified: &qualified,
        clock,
        error: None,
        named_windows: Vec::new(),
    };
    let _ = VisitMut::visit(&mut stmt, &mut r);
    if let Some(e) = r.error {
        return Err(e);
    }
    Ok(stmt.to_string())
}

/// `'2026-01-01' < apply_date` as `apply_date > '2026-01-01'`: polars reads a text beside a
/// date column as a date only when the column comes first ("cannot compare 'date/datetime/
/// time' to a string value").
fn text_literal_second(e: &mut Expr) {
    let Expr::BinaryOp { left, op, right } = e else {
        return;
    };
    let text =
        matches!(left.as_ref(), Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_)));
    let column = matches!(
        right.as_ref(),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_)
    );
    if !text || !column {
        return;
    }
    let flipped = match op {
        BinaryOperator::Lt => BinaryOperator::Gt,
        BinaryOperator::LtEq => BinaryOperator::GtEq,
        BinaryOperator::Gt => BinaryOperator::Lt,
        BinaryOperator::GtEq => BinaryOperator::LtEq,
        BinaryOperator::Eq => BinaryOperator::Eq,
        BinaryOperator::NotEq => BinaryOperator::NotEq,
        _ => return,
    };
    *op = flipped;
    std::mem::swap(left, right);
}

/// `dt IN (DATE '2026-11-20' - INTERVAL '1 day', …)`: polars takes literals only in an IN
/// list, so date arithmetic on literals is folded into the date it names.
fn fold_date_list(e: &mut Expr) {
    let Expr::InList { list, .. } = e else {
        return;
    };
    for item in list.iter_mut() {
        if matches!(item, Expr::BinaryOp { .. }) {
            if let Some(d) = lit_date(item) {
                if let Ok(folded) = parse_expr(&format!("DATE '{}'", d.format("%Y-%m-%d"))) {
                    *item = folded;
                }
            }
        }
    }
}

/// A query with `body` and nothing else (no WITH, ORDER BY or LIMIT).
fn bare_query(body: sqlparser::ast::SetExpr) -> Option<Query> {
    let Ok(Statement::Query(mut q)) = Parser::new(&GenericDialect)
        .try_with_sql("SELECT 1")
        .and_then(|mut p| p.parse_statement())
    else {
        return None;
    };
    *q.body = body;
    Some(*q)
}

/// polars ran the inner operation of a chain of set operations the wrong way round (`A
/// EXCEPT B UNION C` took the rows of A that are in B; an INTERSECT inside ran as EXCEPT).
/// Parenthesised, each runs as written: `(A EXCEPT B) UNION C`.
fn parenthesize_set_operations(body: &mut sqlparser::ast::SetExpr) {
    use sqlparser::ast::SetExpr;
    let SetExpr::SetOperation { left, right, .. } = body else {
        return;
    };
    for side in [left, right] {
        parenthesize_set_operations(side.as_mut());
        if matches!(side.as_ref(), SetExpr::SetOperation { .. }) {
            let inner = side.as_ref().clone();
            match bare_query(inner) {
                Some(q) => **side = SetExpr::Query(Box::new(q)),
                None => unreachable!("a fixed statement parses"),
            }
        }
    }
}

/// `SELECT 1 AS x UNION ALL SELECT 2 ORDER BY x`: SQL names a set operation's columns after
/// its first branch; polars looked for `x` in the last. Ordered over a derived table, the
/// names are the first branch's.
fn order_set_operation_by_names(q: &mut Query) {
    use sqlparser::ast::SetExpr;
    if q.order_by.is_none() || !matches!(q.body.as_ref(), SetExpr::SetOperation { .. }) {
        return;
    }
    let Some(inner) = bare_query(q.body.as_ref().clone()) else {
        return;
    };
    if let Some(select) = select_from_derived(inner, "__set_operation") {
        *q.body = SetExpr::Select(select);
    }
}

/// `SELECT * FROM (inner) AS alias`, for a rewrite to fill in.
fn select_from_derived(inner: Query, alias: &str) -> Option<Box<Select>> {
    let Ok(Statement::Query(shell)) = Parser::new(&GenericDialect)
        .try_with_sql(&format!("SELECT * FROM (SELECT 1) AS {alias}"))
        .and_then(|mut p| p.parse_statement())
    else {
        return None;
    };
    let sqlparser::ast::SetExpr::Select(mut select) = *shell.body else {
        return None;
    };
    match select.from.first_mut() {
        Some(TableWithJoins {
            relation: TableFactor::Derived { subquery, .. },
            ..
        }) => **subquery = inner,
        _ => return None,
    }
    Some(select)
}

/// Whether `e` calls an aggregate outside a window (`SUM(x)`, not `SUM(x) OVER (…)`).
fn has_aggregate(e: &Expr) -> bool {
    sqlparser::ast::visit_expressions(e, |x| {
        if is_aggregate_call(x) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// Aggregate functions: called without `OVER`, they make a query grouped.
const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "min",
    "max",
    "median",
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "std",
    "variance",
    "var",
    "var_samp",
    "var_pop",
    "string_agg",
    "array_agg",
    "listagg",
    "group_concat",
    "first",
    "last",
    "mode",
    "quantile_cont",
    "quantile_disc",
    "percentile_cont",
    "percentile_disc",
    "corr",
    "covar",
    "covar_samp",
    "covar_pop",
    "regr_slope",
    "regr_intercept",
    "regr_r2",
    "approx_count_distinct",
    "any_value",
    "bool_and",
    "bool_or",
    "count_if",
];

fn is_aggregate_call(e: &Expr) -> bool {
    matches!(e, Expr::Function(f)
        if f.over.is_none() && AGGREGATES.contains(&name_parts(&f.name).join(".").as_str()))
}

fn has_window(e: &Expr) -> bool {
    sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::Function(f) if f.over.is_some() => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The columns a grouped query hands to the windows evaluated over its groups: each
/// aggregate call and each column reference (a grouping key), by SQL text, once.
#[derive(Default)]
struct GroupedValues {
    values: Vec<(String, Expr, Ident)>,
    subquery: bool,
    /// Names that stay as they are: the grouped query's own output names.
    keep: BTreeSet<String>,
    /// The SQL text of the GROUP BY expressions: one of them is a value of the groups as a
    /// whole (`DATE_TRUNC('month', d)`), though its column is not.
    keys: BTreeSet<String>,
}

impl GroupedValues {
    fn name_of(&mut self, e: &Expr) -> Ident {
        let text = e.to_string();
        if let Some((_, _, name)) = self.values.iter().find(|(t, _, _)| *t == text) {
            return name.clone();
        }
        let name = Ident::with_quote('"', format!("__grouped_{}", self.values.len()));
        self.values.push((text, e.clone(), name.clone()));
        name
    }
}

impl VisitorMut for GroupedValues {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match e {
            Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
                self.subquery = true;
            }
            Expr::Identifier(id) if self.keep.contains(&ident_name(id)) => {}
            _ if self.keys.contains(&e.to_string()) => *e = Expr::Identifier(self.name_of(e)),
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                *e = Expr::Identifier(self.name_of(e));
            }
            _ if is_aggregate_call(e) => *e = Expr::Identifier(self.name_of(e)),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Window functions in a grouped query (`SUM(COUNT(*)) OVER ()` for a share of the total,
/// `RANK() OVER (ORDER BY SUM(amount) DESC)`): SQL evaluates them over the groups, after
/// `GROUP BY` and `HAVING`. polars evaluated them inside the aggregation: the share of total
/// came out as each group's own count (a silent wrong answer), a rank as a list. The query
/// becomes an outer SELECT that evaluates the windows over a grouped subquery:
///
/// `SELECT k, COUNT(*) AS n, SUM(COUNT(*)) OVER () AS total FROM t GROUP BY k ORDER BY k`
/// runs as `SELECT n, …, SUM("__grouped_0") OVER () AS total FROM (SELECT k AS k,
/// COUNT(*) AS n, COUNT(*) AS "__grouped_0" FROM t GROUP BY k) AS __grouped ORDER BY k`.
///
/// The grouped subquery keeps the query's FROM, WHERE, GROUP BY and HAVING (a window item
/// leaves a NULL in its place, so `GROUP BY 2` still names the same item); the outer query
/// takes the windows, DISTINCT, ORDER BY and LIMIT. QUALIFY is refused (polars' sees only
/// the selected columns). A grouped query ordered by an aggregate (`ORDER BY COUNT(*)
/// DESC`) is split the same way: polars sorted by the aggregate of the grouped frame.
fn split_grouped_windows(q: &mut Query) -> Result<(), SqlError> {
    use sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(s) = q.body.as_ref() else {
        return Ok(());
    };
    let item_expr = |p: &SelectItem| match p {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e.clone()),
        _ => None,
    };
    let exprs: Vec<Option<Expr>> = s.projection.iter().map(item_expr).collect();
    // `ORDER BY COUNT(*) DESC` after GROUP BY: polars sorted the groups by the aggregate of
    // the grouped frame (a constant), so the top 3 came out in any order.
    let order_by_aggregate = match &q.order_by {
        Some(sqlparser::ast::OrderBy {
            kind: sqlparser::ast::OrderByKind::Expressions(keys),
            ..
        }) => keys.iter().any(|k| has_aggregate(&k.expr)),
        _ => false,
    };
    // `HAVING product = 'tax' OR COUNT(*) > 1300`: a condition mixing a grouping column with
    // an aggregate failed in polars ("cannot cast List type"); it filters the groups outside.
    // The GROUP BY columns by name: a condition on them alone moves to WHERE
    // (`having_on_group_keys_to_where`); with an aggregate or an alias of one beside them
    // (`n > 1700 OR status = 'pending'`) it does not.
    let key_names: BTreeSet<String> = match &s.group_by {
        sqlparser::ast::GroupByExpr::Expressions(keys, _) => keys
            .iter()
            .filter_map(|k| match k {
                Expr::Identifier(id) => Some(ident_name(id)),
                Expr::CompoundIdentifier(ids) => ids.last().map(ident_name),
                _ => None,
            })
            .collect(),
        sqlparser::ast::GroupByExpr::All(_) => BTreeSet::new(),
    };
    let mixes_rows_and_aggregates = |c: &Expr| {
        let mut rows = c.clone();
        let _ = VisitMut::visit(&mut rows, &mut RowLevel);
        let mut keys = false;
        let mut others = false;
        let _ = sqlparser::ast::visit_expressions(&rows, |x| {
            match x {
                Expr::Identifier(id) if key_names.contains(&ident_name(id)) => keys = true,
                Expr::CompoundIdentifier(ids)
                    if ids
                        .last()
                        .is_some_and(|i| key_names.contains(&ident_name(i))) =>
                {
                    keys = true
                }
                Expr::Identifier(_) | Expr::CompoundIdentifier(_) => others = true,
                _ => {}
            }
            ControlFlow::<()>::Continue(())
        });
        (keys || others) && (has_aggregate(c) || (keys && others))
    };
    let mut having_conditions = Vec::new();
    if let Some(h) = &s.having {
        split_and(h, &mut having_conditions);
    }
    let having_mixed = having_conditions
        .iter()
        .any(|c| mixes_rows_and_aggregates(c));
    if !exprs.iter().flatten().any(has_window)
        && !s.qualify.as_ref().is_some_and(has_window)
        && !order_by_aggregate
        && !having_mixed
    {
        return Ok(());
    }
    let grouped_by = match &s.group_by {
        sqlparser::ast::GroupByExpr::Expressions(k, _) => !k.is_empty(),
        sqlparser::ast::GroupByExpr::All(_) => true,
    };
    let aggregates = exprs.iter().flatten().any(has_aggregate);
    if !grouped_by && !aggregates && s.having.is_none() {
        return Ok(());
    }
    let refuse = |m: &str| Err(SqlError::at(m.to_string(), None));
    if exprs.iter().any(Option::is_none) {
        return refuse(
            "a window function or an ORDER BY on an aggregate in a grouped query cannot sit \
             beside `*`: name the columns",
        );
    }
    if matches!(s.distinct, Some(sqlparser::ast::Distinct::On(_))) {
        return refuse(
            "DISTINCT ON with a window function in a grouped query is not supported: group in \
             a subquery, then apply the window and DISTINCT ON over it",
        );
    }
    let mut s = s.as_ref().clone();
    alias_clashing_projections(&mut s);
    let mut values = GroupedValues::default();
    if let sqlparser::ast::GroupByExpr::Expressions(keys, _) = &s.group_by {
        for k in keys {
            // By position (`GROUP BY 1`) or alias, the key is the selected expression.
            let item = |p: &SelectItem| match p {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    Some(e.clone())
                }
                _ => None,
            };
            let key = match k {
                Expr::Value(v) => v
                    .value
                    .to_string()
                    .parse::<usize>()
                    .ok()
                    .and_then(|n| s.projection.get(n.checked_sub(1)?))
                    .and_then(item),
                Expr::Identifier(id) => s
                    .projection
                    .iter()
                    .find(|p| matches!(p, SelectItem::ExprWithAlias { alias, .. } if ident_name(alias) == ident_name(id)))
                    .and_then(item)
                    .or_else(|| Some(k.clone())),
                _ => Some(k.clone()),
            };
            if let Some(key) = key {
                if !matches!(key, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
                    values.keys.insert(key.to_string());
                }
            }
        }
    }
    let mut inner_items = Vec::new();
    let mut outer_items = Vec::new();
    let mut outer_names: Vec<String> = Vec::new();
    for (i, p) in s.projection.iter().enumerate() {
        let (expr, alias) = match p {
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            SelectItem::UnnamedExpr(expr) => (expr.clone(), None),
            _ => unreachable!("wildcards refused above"),
        };
        // The name polars would give (the outermost query's items are named already, by
        // `name_result_expressions`; an inner query's keep polars' names for outer references).
        let name = alias.unwrap_or_else(|| match &expr {
            Expr::Identifier(id) => id.clone(),
            Expr::CompoundIdentifier(ids) => ids.last().cloned().expect("a name"),
            e => Ident::with_quote('"', polars_default_name(e)),
        });
        outer_names.push(ident_name(&name));
        if has_window(&expr) {
            // A NULL keeps the item's position for GROUP BY 2.
            inner_items.push(SelectItem::ExprWithAlias {
                expr: Expr::value(Value::Null),
                alias: Ident::with_quote('"', format!("__window_{i}")),
            });
            let mut outer = expr;
            let _ = VisitMut::visit(&mut outer, &mut values);
            outer_items.push(SelectItem::ExprWithAlias {
                expr: outer,
                alias: name,
            });
        } else {
            inner_items.push(SelectItem::ExprWithAlias {
                expr,
                alias: name.clone(),
            });
            outer_items.push(SelectItem::UnnamedExpr(Expr::Identifier(name)));
        }
    }
    let mut named_window = std::mem::take(&mut s.named_window);
    let _ = VisitMut::visit(&mut named_window, &mut values);
    if s.qualify.is_some() {
        // polars' QUALIFY sees the selected columns only, not the grouped values.
        return refuse(
            "QUALIFY in a grouped query is not supported: group and rank in a CTE, then filter \
             it in an outer SELECT (WHERE rnk <= 3)",
        );
    }
    // Mixed HAVING conditions filter the groups in the outer query, where the grouped
    // query's output names are its columns.
    let (mixed, kept): (Vec<Expr>, Vec<Expr>) = having_conditions
        .into_iter()
        .cloned()
        .partition(|c| mixes_rows_and_aggregates(c));
    s.having = and_all(kept);
    // In HAVING, as in GROUP BY, a name that is a column of the source reads the column
    // (`UPPER(status) AS status … HAVING status = 'approved'` means the source status):
    // only names that are output aliases and no grouping column stay as aliases (`n > 5`).
    let grouping_columns = &key_names;
    values.keep = s
        .projection
        .iter()
        .zip(&outer_names)
        .filter(|(p, n)| {
            let aliased_other = matches!(p, SelectItem::ExprWithAlias { expr, alias }
                if !has_window(expr)
                    && !matches!(expr, Expr::Identifier(i) if ident_name(i) == ident_name(alias)));
            let plain_column = matches!(p, SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)))
                || matches!(p, SelectItem::ExprWithAlias { expr: Expr::Identifier(i), alias } if ident_name(i) == ident_name(alias));
            (aliased_other && !grouping_columns.contains(*n)) || plain_column
        })
        .map(|(_, n)| n.clone())
        .collect();
    let mut outer_where = and_all(mixed);
    let _ = VisitMut::visit(&mut outer_where, &mut values);
    values.keep.clear();
    let mut order_by = q.order_by.take();
    if let Some(sqlparser::ast::OrderBy {
        kind: sqlparser::ast::OrderByKind::Expressions(keys),
        ..
    }) = &mut order_by
    {
        for k in keys {
            let output = match &k.expr {
                Expr::Identifier(id) => outer_names.contains(&ident_name(id)),
                Expr::Value(_) => true,
                _ => false,
            };
            if !output {
                let _ = VisitMut::visit(&mut k.expr, &mut values);
            }
        }
    }
    if values.subquery {
        return refuse(
            "a subquery inside a window function of a grouped query is not supported: compute \
             it in a CTE and join it",
        );
    }
    for (_, expr, name) in &values.values {
        inner_items.push(SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: name.clone(),
        });
    }
    let mut inner = s.clone();
    inner.projection = inner_items;
    inner.distinct = None;
    let mut inner_query = q.clone();
    inner_query.with = None;
    inner_query.body = Box::new(SetExpr::Select(Box::new(inner)));
    inner_query.limit_clause = None;
    inner_query.fetch = None;
    let Some(shell) = select_from_derived(inner_query, "__grouped") else {
        return refuse("internal rewrite of a grouped window failed");
    };
    let mut outer = s;
    outer.projection = outer_items;
    outer.from = shell.from;
    outer.selection = outer_where;
    outer.group_by = sqlparser::ast::GroupByExpr::Expressions(Vec::new(), Vec::new());
    outer.having = None;
    outer.named_window = named_window;
    *q.body = SetExpr::Select(Box::new(outer));
    q.order_by = order_by;
    Ok(())
}

/// Blanks out aggregate calls, windows and subqueries, leaving the columns read row by row.
struct RowLevel;

impl VisitorMut for RowLevel {
    type Break = ();
    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        let blank = is_aggregate_call(e)
            || matches!(e, Expr::Function(f) if f.over.is_some())
            || matches!(
                e,
                Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. }
            );
        if blank {
            *e = Expr::value(Value::Null);
        } else if let Expr::Function(f) = e {
            // A unit written bare (`DATE_DIFF(day, …)`) is no column: its own check says so.
            let name = name_parts(&f.name).join(".");
            if matches!(
                name.as_str(),
                "date_diff" | "datediff" | "date_trunc" | "date_part" | "datepart"
            ) {
                if let FunctionArguments::List(l) = &mut f.args {
                    if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(unit))) =
                        l.args.first_mut()
                    {
                        *unit = Expr::value(Value::Null);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

/// `SELECT product, COUNT(*) FROM t` without GROUP BY: polars copied the count onto every
/// row (5,137 rows of `tax,5137`); SQL refuses it. The first such column, if any.
fn column_beside_aggregate(s: &Select) -> Option<String> {
    let sqlparser::ast::GroupByExpr::Expressions(keys, _) = &s.group_by else {
        return None;
    };
    if !keys.is_empty() {
        return None;
    }
    let exprs: Vec<&Expr> = s
        .projection
        .iter()
        .filter_map(|p| match p {
            sqlparser::ast::SelectItem::UnnamedExpr(e)
            | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
            _ => None,
        })
        .collect();
    if !exprs.iter().any(|e| has_aggregate(e)) {
        return None;
    }
    exprs.iter().find_map(|e| {
        let mut row_level = (*e).clone();
        let _ = VisitMut::visit(&mut row_level, &mut RowLevel);
        let mut found = None;
        let _ = sqlparser::ast::visit_expressions(&row_level, |x| match x {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                found = Some(x.to_string());
                ControlFlow::Break(())
            }
            _ => ControlFlow::Continue(()),
        });
        found
    })
}

/// What polars cannot read, refused with a workaround (polars printed its syntax tree).
fn refuse_unsupported_select(s: &Select) -> Result<(), SqlError> {
    let refuse = |m: &str| Err(SqlError::at(m.to_string(), None));
    let mut aliases = BTreeSet::new();
    for p in &s.projection {
        if let sqlparser::ast::SelectItem::ExprWithAlias { alias, .. } = p {
            if !aliases.insert(ident_name(alias)) {
                return refuse(&format!(
                    "two columns of the result are named {}: give them different names",
                    ident_name(alias)
                ));
            }
        }
    }
    // polars reads `[NOT] EXISTS` only as a condition of its own in WHERE (it printed its
    // syntax tree for `… OR EXISTS (…)`).
    let mut conditions = Vec::new();
    if let Some(w) = &s.selection {
        split_and(w, &mut conditions);
    }
    for c in conditions {
        let top = matches!(c, Expr::Exists { .. })
            || matches!(c, Expr::Nested(inner) if matches!(inner.as_ref(), Expr::Exists { .. }));
        let nested = !top
            && sqlparser::ast::visit_expressions(c, |x| match x {
                Expr::Exists { .. } => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            })
            .is_break();
        if nested {
            return refuse(
                "[NOT] EXISTS (…) inside OR, NOT or another expression is not supported: write it \
                 as a condition of its own (… AND EXISTS (…)), or UNION the two cases",
            );
        }
    }
    if let Some(c) = column_beside_aggregate(s) {
        return refuse(&format!(
            "{c} is selected beside an aggregate but is not grouped: add GROUP BY {c}, or \
             aggregate it (MIN({c}))"
        ));
    }
    let keys: &[Expr] = match &s.group_by {
        sqlparser::ast::GroupByExpr::Expressions(k, modifiers) => {
            if !modifiers.is_empty() {
                return refuse(
                    "GROUP BY … WITH ROLLUP|CUBE|TOTALS is not supported: UNION ALL the \
                     groupings",
                );
            }
            k
        }
        sqlparser::ast::GroupByExpr::All(_) => &[],
    };
    if keys
        .iter()
        .any(|k| matches!(k, Expr::Rollup(_) | Expr::Cube(_) | Expr::GroupingSets(_)))
    {
        return refuse(
            "GROUPING SETS, ROLLUP and CUBE are not supported: UNION ALL one GROUP BY per \
             grouping",
        );
    }
    if s.having.is_some()
        && keys.is_empty()
        && matches!(s.group_by, sqlparser::ast::GroupByExpr::Expressions(..))
    {
        return refuse(
            "HAVING without GROUP BY is not supported: compute the aggregate in a subquery and \
             filter it in the outer WHERE",
        );
    }
    let mut having = Vec::new();
    if let Some(h) = &s.having {
        split_and(h, &mut having);
    }
    for c in having {
        let mut on_dt = Vec::new();
        dt_mentions(c, &mut on_dt);
        let mut calls = false;
        outside_subqueries(c, |x| calls |= matches!(x, Expr::Function(_)));
        if !on_dt.is_empty() && !calls {
            // The partitions a query reads are chosen from its WHERE: in HAVING a condition
            // on dt would filter the latest partition's groups only.
            return refuse(
                "a condition on dt belongs in WHERE, where it chooses the partitions read (in \
                 HAVING it would only see the latest partition)",
            );
        }
    }
    for item in &s.projection {
        let e = match item {
            sqlparser::ast::SelectItem::UnnamedExpr(e)
            | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => e,
            _ => continue,
        };
        let mut exists = false;
        outside_subqueries(e, |x| exists |= matches!(x, Expr::Exists { .. }));
        if exists {
            return refuse(
                "EXISTS (…) as a column is not supported: LEFT JOIN the subquery's distinct \
                 keys and test them with IS NOT NULL, or use EXISTS in WHERE",
            );
        }
    }
    let tuple_in = sqlparser::ast::visit_expressions(s, |x| match x {
        Expr::InSubquery { expr, .. } if matches!(**expr, Expr::Tuple(_)) => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    });
    if tuple_in.is_break() {
        return refuse(
            "(a, b) IN (SELECT …) is not supported: write EXISTS (SELECT 1 FROM … WHERE x.a = \
             t.a AND x.b = t.b), or join the subquery's distinct pairs",
        );
    }
    Ok(())
}

/// `HAVING` conditions on grouping columns alone (no aggregate, no function) move to `WHERE`,
/// where they mean the same: polars failed on any of them (`HAVING product = 'tax'`: "cannot
/// cast List type"). A column that a SELECT alias of another expression shadows stays.
fn having_on_group_keys_to_where(s: &mut Select) {
    let Some(having) = s.having.take() else {
        return;
    };
    let sqlparser::ast::GroupByExpr::Expressions(keys, _) = &s.group_by else {
        s.having = Some(having);
        return;
    };
    let column = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
    let text = |e: &Expr| e.to_string().to_lowercase();
    // Keys by position (`GROUP BY 1`) are the selected expressions they point at.
    let keys: Vec<Expr> = keys
        .iter()
        .filter_map(|k| match k {
            Expr::Value(v) => {
                let n: usize = v.value.to_string().parse().ok()?;
                match s.projection.get(n.checked_sub(1)?)? {
                    sqlparser::ast::SelectItem::UnnamedExpr(e)
                    | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => Some(e.clone()),
                    _ => None,
                }
            }
            k => Some(k.clone()),
        })
        .collect();
    // A selected column's alias stands for it when the column or the alias is a key.
    // When both the column and the alias's name are keys (`SELECT channel AS product … GROUP
    // BY channel, product`), the name is ambiguous: such a condition stays in HAVING.
    let mut aliases: HashMap<String, Expr> = HashMap::new();
    let mut ambiguous: BTreeSet<String> = BTreeSet::new();
    for p in &s.projection {
        if let sqlparser::ast::SelectItem::ExprWithAlias { expr, alias } = p {
            let name = ident_name(alias);
            let expr_is_key = keys.iter().any(|k| text(k) == text(expr));
            let name_is_key = keys.iter().any(|k| text(k) == name);
            if column(expr) && expr_is_key && name_is_key && text(expr) != name {
                ambiguous.insert(name);
            } else if column(expr) && (expr_is_key || name_is_key) {
                aliases.insert(name, expr.clone());
            }
        }
    }
    let keys: BTreeSet<String> = keys.iter().filter(|k| column(k)).map(text).collect();
    let mut shadowed: BTreeSet<String> = s
        .projection
        .iter()
        .filter_map(|p| match p {
            sqlparser::ast::SelectItem::ExprWithAlias { expr, alias }
                if expr.to_string().to_lowercase() != ident_name(alias) =>
            {
                Some(ident_name(alias))
            }
            _ => None,
        })
        .collect();
    shadowed.extend(ambiguous);
    // Only grouping columns (or their aliases), at least one, and no call or subquery.
    let on_keys_only = |c: &Expr| {
        let on_key = |e: &Expr| match e {
            Expr::Identifier(i) => {
                aliases.contains_key(&ident_name(i))
                    || (keys.contains(&text(e)) && !shadowed.contains(&ident_name(i)))
            }
            Expr::CompoundIdentifier(_) => keys.contains(&text(e)),
            _ => false,
        };
        let other = sqlparser::ast::visit_expressions(c, |e| match e {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) if !on_key(e) => {
                ControlFlow::Break(())
            }
            Expr::Function(_)
            | Expr::Subquery(_)
            | Expr::Exists { .. }
            | Expr::InSubquery { .. } => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        });
        other.is_continue() && reads_rows(c)
    };
    // Aliases are spelled as their columns in WHERE, which runs before the SELECT names them.
    let spelled = |c: &Expr| {
        let mut c = c.clone();
        let _ = sqlparser::ast::visit_expressions_mut(&mut c, |e| {
            if let Expr::Identifier(i) = e {
                if let Some(col) = aliases.get(&ident_name(i)) {
                    *e = col.clone();
                }
            }
            ControlFlow::<()>::Continue(())
        });
        Expr::Nested(Box::new(c))
    };
    let mut conjuncts = Vec::new();
    split_and(&having, &mut conjuncts);
    let (moved, kept): (Vec<&Expr>, Vec<&Expr>) =
        conjuncts.into_iter().partition(|c| on_keys_only(c));
    if moved.is_empty() {
        s.having = Some(having);
        return;
    }
    let nested = |c: &Expr| Expr::Nested(Box::new(c.clone()));
    let mut wheres: Vec<Expr> = s
        .selection
        .take()
        .map(|w| vec![nested(&w)])
        .unwrap_or_default();
    wheres.extend(moved.into_iter().map(spelled));
    s.selection = and_all(wheres);
    s.having = and_all(kept.into_iter().cloned().collect());
}

/// A WHERE condition on `dt` that may be NULL (`dt IN (…, NULL)`, a CASE without ELSE) kept
/// every row of the partitions it was NULL for: polars evaluates it once per partition from
/// the path and keeps the partition when it is not FALSE. Each such conjunct becomes
/// `COALESCE((c), FALSE)`, the same condition for SQL (WHERE keeps only TRUE).
fn guard_dt_conditions(s: &mut Select) {
    let Some(selection) = s.selection.take() else {
        return;
    };
    let mut conjuncts = Vec::new();
    split_and(&selection, &mut conjuncts);
    let guarded: Vec<Expr> = conjuncts
        .into_iter()
        .map(|c| {
            let mut mentions = Vec::new();
            dt_mentions(c, &mut mentions);
            if mentions.is_empty() || is_plain_dt_comparison(c) {
                return c.clone();
            }
            let arg = |e: Expr| FunctionArg::Unnamed(FunctionArgExpr::Expr(e));
            Expr::Function(sqlparser::ast::Function {
                name: ObjectName::from(vec![Ident::new("COALESCE")]),
                uses_odbc_syntax: false,
                parameters: FunctionArguments::None,
                args: FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
                    duplicate_treatment: None,
                    args: vec![
                        arg(Expr::Nested(Box::new(c.clone()))),
                        arg(Expr::Value(Value::Boolean(false).into())),
                    ],
                    clauses: Vec::new(),
                }),
                filter: None,
                null_treatment: None,
                over: None,
                within_group: Vec::new(),
            })
        })
        .collect();
    s.selection = and_all(guarded);
}

/// `dt <op> literal` (or the reverse) and `dt [NOT] BETWEEN a AND b` without NULLs: never
/// NULL (dt is never NULL), so left as they are for polars to prune on.
fn is_plain_dt_comparison(e: &Expr) -> bool {
    let literal = |e: &Expr| {
        matches!(e, Expr::Value(v) if v.value != Value::Null)
            || matches!(e, Expr::TypedString { .. })
    };
    match e {
        Expr::BinaryOp { left, op, right } if cmp_op(op).is_some() => {
            (is_dt(left) && literal(right)) || (literal(left) && is_dt(right))
        }
        Expr::Between {
            expr, low, high, ..
        } => is_dt(expr) && literal(low) && literal(high),
        _ => false,
    }
}

/// `FULL JOIN … USING (k)`: polars keeps the left table's `k`, NULL for the rows only the right
/// table has, where SQL gives COALESCE(a.k, b.k): refused rather than answered wrongly.
fn refuse_full_using(twj: &TableWithJoins) -> Result<(), SqlError> {
    use sqlparser::ast::{JoinConstraint, JoinOperator as J};
    for join in &twj.joins {
        if let J::FullOuter(JoinConstraint::Using(_)) = &join.join_operator {
            let pos = match &join.relation {
                TableFactor::Table { name, .. } => Some(name_pos(name)),
                _ => None,
            };
            return Err(SqlError::at(
                "FULL JOIN … USING (…) is not supported (polars leaves the key NULL on rows only \
                 the right table has): write FULL JOIN … ON a.k = b.k and select \
                 COALESCE(a.k, b.k) AS k",
                pos,
            ));
        }
    }
    Ok(())
}

/// SQL's NULL rules where polars differs:
/// - `x IS [NOT] TRUE|FALSE` is never NULL (polars gave NULL for a NULL `x`);
/// - `x [NOT] IN (…, NULL)` is never TRUE for NOT IN and never FALSE for IN (polars let rows
///   through a `NOT IN` list with a NULL when the filter reached the Parquet scan).
fn sql_null_semantics(e: &Expr) -> Option<Expr> {
    let text = match e {
        Expr::IsTrue(x) => format!("COALESCE(({x}), FALSE)"),
        Expr::IsNotTrue(x) => format!("NOT COALESCE(({x}), FALSE)"),
        Expr::IsFalse(x) => format!("COALESCE(NOT ({x}), FALSE)"),
        Expr::IsNotFalse(x) => format!("COALESCE(({x}), TRUE)"),
        Expr::InList {
            expr,
            list,
            negated,
        } if list.iter().any(is_null_literal) => {
            let rest: Vec<String> = list
                .iter()
                .filter(|v| !is_null_literal(v))
                .map(|v| v.to_string())
                .collect();
            let hit = if *negated { "FALSE" } else { "TRUE" };
            if rest.is_empty() {
                "CAST(NULL AS BOOLEAN)".to_string()
            } else {
                format!(
                    "CASE WHEN ({expr}) IN ({}) THEN {hit} ELSE CAST(NULL AS BOOLEAN) END",
                    rest.join(", ")
                )
            }
        }
        _ => return None,
    };
    parse_expr(&text).ok()
}

/// `x IN (0, 15473.33)`: polars types the list by its first value and refused a decimal after
/// an integer. When the list mixes them, the integers are written as decimals — unless one is
/// beyond 2^53, which a decimal (a double) cannot hold exactly (polars' error stays then).
/// Literals in parentheses, `IN ((0), (1))`, lose them (polars refused those).
fn uniform_number_list(e: &mut Expr) {
    let Expr::InList { list, .. } = e else {
        return;
    };
    for v in list.iter_mut() {
        while let Expr::Nested(inner) = v {
            if !matches!(
                **inner,
                Expr::Value(_) | Expr::Nested(_) | Expr::UnaryOp { .. }
            ) {
                break;
            }
            *v = std::mem::replace(&mut **inner, Expr::Value(Value::Null.into()));
        }
    }
    fn number(e: &mut Expr) -> Option<&mut String> {
        match e {
            Expr::Value(v) => match &mut v.value {
                Value::Number(n, _) => Some(n),
                _ => None,
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus | UnaryOperator::Plus,
                expr,
            } => number(expr),
            Expr::Nested(inner) => number(inner),
            _ => None,
        }
    }
    let is_integer = |n: &str| n.bytes().all(|b| b.is_ascii_digit());
    let exact_in_a_double = |n: &str| n.parse::<u64>().is_ok_and(|x| x <= 1 << 53);
    let kinds: Vec<(bool, bool)> = list
        .iter_mut()
        .filter_map(|v| number(v).map(|n| (is_integer(n), exact_in_a_double(n))))
        .collect();
    let integers = kinds.iter().filter(|(int, _)| *int).count();
    if integers == 0 || integers == kinds.len() || kinds.iter().any(|(int, exact)| *int && !exact) {
        return;
    }
    for v in list.iter_mut() {
        if let Some(n) = number(v).filter(|n| is_integer(n)) {
            n.push_str(".0");
        }
    }
}

fn is_null_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if v.value == Value::Null)
}

/// SQL's NULL order in a window's ORDER BY: as written (`NULLS FIRST|LAST`), else as in the
/// query's own ORDER BY (last when ascending, first when descending). polars puts NULLs first
/// and ignores NULLS FIRST/LAST there, so the first key is preceded by a flag that sorts its
/// NULLs where they belong. The flag is a CASE (named `literal` by polars: a key derived from
/// the column would clash with it), which is why only the first key gets one.
///
/// A later key sorts its NULLs as the smallest value (first ascending, last descending) and
/// cannot be given a flag of its own: a `NULLS FIRST|LAST` that asks otherwise is refused
/// rather than ignored.
fn sql_null_order(spec: &mut sqlparser::ast::WindowSpec) -> Result<(), SqlError> {
    let Some(first) = spec.order_by.first() else {
        return Ok(());
    };
    if is_null_flag(&first.expr) {
        return Ok(());
    }
    for key in &spec.order_by[1..] {
        let desc = key.options.asc == Some(false);
        if key.options.nulls_first.is_some_and(|first| first == desc) {
            return Err(SqlError::at(
                format!(
                    "window ORDER BY … {key}: NULLS {} on a key after the first is not \
                     supported (NULLs of a later key sort as its smallest value: first when \
                     ascending, last when descending); order by `{} IS NULL` before it, or \
                     make it the first key",
                    if desc { "FIRST" } else { "LAST" },
                    key.expr
                ),
                None,
            ));
        }
    }
    let desc = first.options.asc == Some(false);
    // Also when NULLs go first: polars ranks a NULL key as NULL, and the others as if the
    // NULL rows were not there; ranked as a pair with the flag, they tie as SQL says.
    let nulls_first = first.options.nulls_first.unwrap_or(desc);
    let (null, other) = if nulls_first == desc { (1, 0) } else { (0, 1) };
    let Ok(flag) = parse_expr(&format!(
        "CASE WHEN ({}) IS NULL THEN {null} ELSE {other} END",
        first.expr
    )) else {
        return Ok(());
    };
    let key = sqlparser::ast::OrderByExpr {
        expr: flag,
        options: sqlparser::ast::OrderByOptions {
            asc: first.options.asc,
            nulls_first: None,
        },
        with_fill: None,
    };
    spec.order_by.insert(0, key);
    Ok(())
}

/// The flag `sql_null_order` adds (so that a window seen twice gets one).
fn is_null_flag(e: &Expr) -> bool {
    matches!(e, Expr::Case { conditions, .. }
        if conditions.len() == 1 && matches!(conditions[0].condition, Expr::IsNull(_)))
}

/// Aggregates that polars computes over the whole partition even when the window has an
/// ORDER BY (a running value in SQL).
const WHOLE_PARTITION_IN_POLARS: &[&str] = &[
    "stddev",
    "stddev_samp",
    "stddev_pop",
    "std",
    "variance",
    "var",
    "var_samp",
    "var_pop",
    "median",
    "quantile_cont",
    "quantile_disc",
    "percentile_cont",
    "percentile_disc",
    "string_agg",
    "array_agg",
    "first",
    "last",
    "mode",
];

/// Aggregates whose window polars ignores altogether (the whole table's value on every row).
const NOT_WINDOWED_IN_POLARS: &[&str] = &[
    "corr",
    "covar",
    "covar_samp",
    "covar_pop",
    "regr_slope",
    "regr_intercept",
    "regr_r2",
];

/// Window functions as SQL means them: NULLs ordered as SQL orders them, a running `AVG` as
/// running SUM / COUNT (polars gave the partition's mean on every row), and the running
/// aggregates polars cannot compute refused instead of answered with the partition's value.
/// Also refuses `STRING_AGG(DISTINCT …)`, which polars cannot run (it panicked).
fn rewrite_window(
    e: &mut Expr,
    named: Option<&HashMap<String, sqlparser::ast::WindowSpec>>,
) -> Result<Option<Expr>, SqlError> {
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = name_parts(&f.name).join(".");
    let pos = name_pos(&f.name);
    if let FunctionArguments::List(l) = &f.args {
        if matches!(
            name.as_str(),
            "string_agg" | "array_agg" | "listagg" | "group_concat"
        ) && matches!(
            l.duplicate_treatment,
            Some(sqlparser::ast::DuplicateTreatment::Distinct)
        ) {
            return Err(SqlError::at(
                format!(
                    "{}(DISTINCT …) is not supported: aggregate the rows of a SELECT DISTINCT \
                     subquery instead",
                    name.to_uppercase()
                ),
                Some(pos),
            ));
        }
    }
    // A named window is spelled out in the call: polars ran a running SUM over a named
    // window but not the COUNT beside it, and ran `OVER (w)` and `OVER (w ORDER BY …)` as if
    // `w` were not there.
    let lookup = |w: &Ident| named.and_then(|n| n.get(&ident_name(w))).cloned();
    match &mut f.over {
        Some(sqlparser::ast::WindowType::NamedWindow(w)) => {
            if let Some(spec) = lookup(w) {
                f.over = Some(sqlparser::ast::WindowType::WindowSpec(spec));
            }
        }
        Some(sqlparser::ast::WindowType::WindowSpec(spec)) if spec.window_name.is_some() => {
            let w = spec.window_name.clone().expect("checked");
            let Some(base) = lookup(&w) else {
                return Err(SqlError::at(
                    format!("unknown window {}", ident_name(&w)),
                    Some(pos),
                ));
            };
            spec.window_name = None;
            if spec.partition_by.is_empty() {
                spec.partition_by = base.partition_by;
            }
            if spec.order_by.is_empty() {
                spec.order_by = base.order_by;
            }
            if spec.window_frame.is_none() {
                spec.window_frame = base.window_frame;
            }
        }
        _ => {}
    }
    if f.over.is_some() && NOT_WINDOWED_IN_POLARS.contains(&name.as_str()) {
        return Err(SqlError::at(
            format!(
                "{}(…) OVER (…) is not supported (polars ignores the window and gives the \
                 whole table's value): compute it with GROUP BY and join it back",
                name.to_uppercase()
            ),
            Some(pos),
        ));
    }
    let running = match &mut f.over {
        Some(sqlparser::ast::WindowType::WindowSpec(spec)) => {
            sql_null_order(spec)?;
            !spec.order_by.is_empty()
        }
        Some(sqlparser::ast::WindowType::NamedWindow(_)) | None => return Ok(None),
    };
    if let Some(spelled) = ranked_window(f, &name, running)? {
        return Ok(Some(spelled));
    }
    if !running {
        // Without ORDER BY the frame is the whole partition: polars gave each row its own
        // value (it reads LAST_VALUE as "up to the current row" whatever the window).
        let framed = matches!(&f.over,
            Some(sqlparser::ast::WindowType::WindowSpec(spec)) if spec.window_frame.is_some());
        if name == "last_value" && !framed {
            let mut last = f.clone();
            last.name = ObjectName::from(vec![Ident::new("LAST")]);
            return Ok(Some(Expr::Function(last)));
        }
        return Ok(None);
    }
    let distinct = matches!(&f.args, FunctionArguments::List(l)
        if matches!(l.duplicate_treatment, Some(sqlparser::ast::DuplicateTreatment::Distinct)));
    if WHOLE_PARTITION_IN_POLARS.contains(&name.as_str()) || distinct {
        return Err(SqlError::at(
            format!(
                "{}({}…) OVER (… ORDER BY …) as a running value is not supported (polars \
                 gives the whole partition's value): drop the ORDER BY for the partition's value",
                name.to_uppercase(),
                if distinct { "DISTINCT " } else { "" }
            ),
            Some(pos),
        ));
    }
    if matches!(name.as_str(), "avg" | "mean") {
        let mut sum = f.clone();
        sum.name = ObjectName::from(vec![Ident::new("SUM")]);
        let mut count = f.clone();
        count.name = ObjectName::from(vec![Ident::new("COUNT")]);
        // `AVG(1) OVER (… ORDER BY …)`: its SUM and COUNT of a constant count the rows too.
        let spelled = |g: sqlparser::ast::Function| {
            let g = Expr::Function(g);
            constant_aggregate(&g).unwrap_or(g)
        };
        let (sum, count) = (spelled(sum), spelled(count));
        return parse_expr(&format!("CAST({sum} AS DOUBLE) / NULLIF({count}, 0)")).map(Some);
    }
    Ok(None)
}

/// A whole non-negative integer literal argument (`NTILE(10)`, `LAG(x, 2)`), or `None`.
fn literal_count(arg: Option<&FunctionArg>) -> Option<u64> {
    match arg {
        Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Window functions polars lacks, spelled with `ROW_NUMBER` and `COUNT(*)` over the same
/// window: `NTILE(n)` (score deciles) and `LAG`/`LEAD` with a default. The default replaces
/// the value only where the offset row lies outside the partition, as SQL says; a NULL value
/// of the row before stays NULL (`COALESCE(LAG(x), d)` would replace it too).
fn ranked_window(
    f: &sqlparser::ast::Function,
    name: &str,
    running: bool,
) -> Result<Option<Expr>, SqlError> {
    if !matches!(name, "ntile" | "lag" | "lead") {
        return Ok(None);
    }
    let pos = name_pos(&f.name);
    let Some(sqlparser::ast::WindowType::WindowSpec(spec)) = &f.over else {
        return Ok(None);
    };
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let args = &list.args;
    if name != "ntile" && args.len() != 3 {
        return Ok(None);
    }
    let upper = name.to_uppercase();
    if !running {
        return Err(SqlError::at(
            format!("{upper} needs an ORDER BY in its window: the rows' order decides the result"),
            Some(pos),
        ));
    }
    let over = format!("OVER ({spec})");
    let partition = if spec.partition_by.is_empty() {
        "OVER ()".to_string()
    } else {
        let keys: Vec<String> = spec.partition_by.iter().map(|k| k.to_string()).collect();
        format!("OVER (PARTITION BY {})", keys.join(", "))
    };
    let text = if name == "ntile" {
        let buckets = match (args.len(), literal_count(args.first())) {
            (1, Some(n)) if n > 0 => n,
            _ => {
                return Err(SqlError::at(
                    "NTILE takes one argument, a whole number of buckets above 0 (NTILE(10))",
                    Some(pos),
                ))
            }
        };
        // Row i (from 0) of a partition of N rows, in n buckets of q = N / n rows, the
        // first r = N % n of them one row larger: bucket i / (q + 1) + 1 among the first
        // r * (q + 1) rows, (i - r) / q + 1 after them.
        let i = format!("(ROW_NUMBER() {over} - 1)");
        let q = format!("CAST(FLOOR(COUNT(*) {partition} / {buckets}) AS BIGINT)");
        let r = format!("(COUNT(*) {partition} - {q} * {buckets})");
        format!(
            "CAST(CASE WHEN {i} < {r} * ({q} + 1) THEN FLOOR({i} / ({q} + 1)) + 1 \
             ELSE FLOOR(({i} - {r}) / NULLIF({q}, 0)) + 1 END AS BIGINT)"
        )
    } else {
        let offset = literal_count(args.get(1)).ok_or_else(|| {
            SqlError::at(
                format!("{upper}(x, offset, default): the offset must be a whole number (1, 2, …)"),
                Some(pos),
            )
        })?;
        let value = args[0].to_string();
        let default = args[2].to_string();
        let inside = if name == "lag" {
            format!("ROW_NUMBER() {over} > {offset}")
        } else {
            format!("ROW_NUMBER() {over} + {offset} <= COUNT(*) {partition}")
        };
        format!("CASE WHEN {inside} THEN {upper}({value}, {offset}) {over} ELSE {default} END")
    };
    parse_expr(&text).map(Some)
}

/// The tables a condition's columns name (`a.x` → `a`, `clean.t.x` → `t`), and whether it
/// has unqualified columns; subqueries are not looked into.
fn qualifiers(e: &Expr) -> (BTreeSet<String>, bool) {
    let mut quals = BTreeSet::new();
    let mut bare = false;
    outside_subqueries(e, |e| match e {
        Expr::Identifier(_) => bare = true,
        Expr::CompoundIdentifier(ids) if ids.len() >= 2 => {
            quals.insert(ident_name(&ids[ids.len() - 2]));
        }
        _ => {}
    });
    (quals, bare)
}

/// polars applies the conditions of a join's `ON` beyond its key equalities after the join, as
/// a filter: in a `LEFT JOIN`, `ON a.k = e.k AND a.amount > 100` dropped the unmatched rows,
/// as an inner join would. Conditions on the joined (right) table alone move into a subquery,
/// `LEFT JOIN (SELECT * FROM t AS a WHERE a.amount > 100) AS a ON a.k = e.k`, which is what
/// the SQL means; any other condition (other than an equality) is refused.
///
/// `SEMI` and `ANTI` joins are read the same way (polars filtered after the join there too:
/// a SEMI JOIN gave more rows than its left table, an ANTI JOIN all of them). In an `INNER
/// JOIN` such conditions mean the same in a subquery, where polars reads them (in `ON` it
/// could not find a column of the joined table: `AND m.g = 'x'` failed).
fn push_joined_table_conditions(twj: &mut TableWithJoins) -> Result<(), SqlError> {
    use sqlparser::ast::{JoinConstraint, JoinOperator as J};
    for join in &mut twj.joins {
        let (kind, on) = match &mut join.join_operator {
            J::Left(JoinConstraint::On(on)) | J::LeftOuter(JoinConstraint::On(on)) => {
                (Some("LEFT JOIN"), on)
            }
            J::Semi(JoinConstraint::On(on)) | J::LeftSemi(JoinConstraint::On(on)) => {
                (Some("SEMI JOIN"), on)
            }
            J::Anti(JoinConstraint::On(on)) | J::LeftAnti(JoinConstraint::On(on)) => {
                (Some("ANTI JOIN"), on)
            }
            J::Right(JoinConstraint::On(on)) | J::RightOuter(JoinConstraint::On(on)) => {
                (Some("RIGHT JOIN"), on)
            }
            J::FullOuter(JoinConstraint::On(on)) => (Some("FULL JOIN"), on),
            J::Join(JoinConstraint::On(on)) | J::Inner(JoinConstraint::On(on)) => (None, on),
            _ => continue,
        };
        // Only a LEFT, SEMI or ANTI join keeps its left rows whatever the joined table says,
        // so that a condition on the joined table alone may filter it first.
        let pushable = matches!(kind, None | Some("LEFT JOIN" | "SEMI JOIN" | "ANTI JOIN"));
        let Some(right_ident) = relation_name(&join.relation) else {
            continue;
        };
        let right = ident_name(&right_ident);
        let mut conjuncts = Vec::new();
        split_and(on, &mut conjuncts);
        let mut keep: Vec<Expr> = Vec::new();
        let mut pushed: Vec<Expr> = Vec::new();
        for c in conjuncts {
            let (quals, bare) = qualifiers(c);
            if pushable && !bare && quals.len() == 1 && quals.contains(&right) {
                pushed.push(c.clone());
            } else if let Some(kind) = kind.filter(|_| {
                // polars reads any equality right in a LEFT, SEMI or ANTI join (`a.product =
                // 'tax'` too), but in a RIGHT or FULL join only one between the two tables.
                let equality = matches!(
                    c,
                    Expr::BinaryOp {
                        op: BinaryOperator::Eq,
                        ..
                    }
                );
                !(equality && (pushable || is_key_equality(c)))
            }) {
                // polars applies any other condition after the join, as a filter: an outer,
                // semi or anti join then gives other rows than SQL says.
                let way_round = match kind {
                    "LEFT JOIN" => {
                        "move it into the WHERE clause (if that is what is meant) or into a \
                         subquery"
                    }
                    "RIGHT JOIN" => {
                        "write it as a LEFT JOIN with the two tables swapped (a LEFT JOIN takes \
                         conditions on its joined table), or filter in a subquery"
                    }
                    "FULL JOIN" => "filter the tables in subqueries and join those",
                    _ if quals.contains(&right) => {
                        "aggregate the joined table by its key (e.g. MIN or MAX of the compared \
                         column), join that, and compare in WHERE"
                    }
                    _ => "move it into the WHERE clause",
                };
                let what = if !pushable {
                    "is not an equality between the two tables' columns".to_string()
                } else if quals.contains(&right) {
                    format!(
                        "mixes the joined table {right} with the others (other than an \
                         equality between their columns)"
                    )
                } else {
                    format!("is not on the joined table {right} alone (other than an equality)")
                };
                return Err(SqlError::at(
                    format!(
                        "{kind} … ON {c}: a condition that {what} is not supported: the engine \
                         would apply it after the join, as a filter, and give other rows; \
                         {way_round}"
                    ),
                    None,
                ));
            } else {
                keep.push(c.clone());
            }
        }
        if pushed.is_empty() {
            continue;
        }
        let condition = and_all(pushed).expect("one condition or more");
        filter_in_subquery(&mut join.relation, condition, right_ident)?;
        *on = and_all(keep).unwrap_or(Expr::Value(Value::Boolean(true).into()));
    }
    Ok(())
}

/// The name columns qualify a table factor by: its alias, else its table name's last part, as
/// written (case and quotes: polars matches `A.x` to alias `A` only).
fn relation_name(tf: &TableFactor) -> Option<Ident> {
    match tf {
        TableFactor::Table { alias: Some(a), .. } | TableFactor::Derived { alias: Some(a), .. } => {
            Some(a.name.clone())
        }
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last().and_then(|p| p.as_ident()).cloned(),
        _ => None,
    }
}

/// Replaces `relation` by `(SELECT * FROM relation WHERE condition) AS alias`. The table and
/// the condition move as they are (their positions name the bindings).
fn filter_in_subquery(
    relation: &mut TableFactor,
    condition: Expr,
    alias: Ident,
) -> Result<(), SqlError> {
    use sqlparser::ast::SetExpr;
    let mut sub = match Parser::new(&GenericDialect)
        .try_with_sql("SELECT * FROM __panorama_placeholder")
        .and_then(|mut p| p.parse_query())
    {
        Ok(q) => q,
        Err(e) => return Err(SqlError::at(e.to_string(), None)),
    };
    if let SetExpr::Select(sel) = sub.body.as_mut() {
        if let Some(from) = sel.from.first_mut() {
            std::mem::swap(&mut from.relation, relation);
        }
        sel.selection = Some(condition);
    }
    *relation = TableFactor::Derived {
        lateral: false,
        subquery: sub,
        alias: Some(TableAlias {
            explicit: true,
            name: alias,
            columns: Vec::new(),
            at: None,
        }),
        sample: None,
    };
    Ok(())
}

/// A correlated `[NOT] EXISTS (SELECT … FROM t WHERE t.k = o.k AND t.x = 'v')`: the conditions
/// on the subquery's own table move into a subquery of that table, leaving the correlation.
/// polars failed when such a condition named a column the outer table also has (`status`,
/// `dt`). A correlation other than an equality is refused: polars could not read it.
fn exists_own_conditions_first(e: &mut Expr) -> Result<(), SqlError> {
    use sqlparser::ast::SetExpr;
    let Expr::Exists { subquery, .. } = e else {
        return Ok(());
    };
    let SetExpr::Select(sel) = subquery.body.as_mut() else {
        return Ok(());
    };
    let grouped =
        !matches!(&sel.group_by, sqlparser::ast::GroupByExpr::Expressions(k, _) if k.is_empty());
    if sel.from.len() != 1 || !sel.from[0].joins.is_empty() || grouped || sel.having.is_some() {
        return Ok(());
    }
    let Some(inner_ident) = relation_name(&sel.from[0].relation) else {
        return Ok(());
    };
    let inner = ident_name(&inner_ident);
    let Some(selection) = sel.selection.take() else {
        return Ok(());
    };
    let mut conjuncts = Vec::new();
    split_and(&selection, &mut conjuncts);
    let mut own = Vec::new();
    let mut rest = Vec::new();
    for c in conjuncts {
        let (quals, bare) = qualifiers(c);
        if !bare && quals.len() == 1 && quals.contains(&inner) {
            own.push(c.clone());
        } else if quals.contains(&inner) && quals.len() > 1 && !is_key_equality(c) {
            return Err(SqlError::at(
                format!(
                    "EXISTS (… WHERE {c}): a correlation other than an equality between the \
                     subquery's and the outer query's columns is not supported; aggregate the \
                     subquery's table by its key (e.g. MIN or MAX of the compared column), \
                     join that, and compare in WHERE"
                ),
                None,
            ));
        } else {
            rest.push(c.clone());
        }
    }
    if own.is_empty() {
        sel.selection = Some(selection);
        return Ok(());
    }
    let condition = and_all(own).expect("one condition or more");
    filter_in_subquery(&mut sel.from[0].relation, condition, inner_ident)?;
    sel.selection = and_all(rest);
    Ok(())
}

/// An `ON` equality polars takes as a join key: both sides read columns, of different tables
/// (or unqualified ones, which polars resolves itself). `a.status = 'x'` or `a.k = a.j` is a
/// filter, which polars applies after the join.
fn is_key_equality(c: &Expr) -> bool {
    let Expr::BinaryOp {
        left,
        op: BinaryOperator::Eq,
        right,
    } = c
    else {
        return false;
    };
    let (l, l_bare) = qualifiers(left);
    let (r, r_bare) = qualifiers(right);
    // Each side names a column (`a.k = UPPER('x')` is a filter on `a`).
    let columns = |q: &BTreeSet<String>, bare: bool| bare || !q.is_empty();
    columns(&l, l_bare) && columns(&r, r_bare) && (l_bare || r_bare || l != r)
}

/// Literals polars would take wrongly: `DATE '2026-02-30'` (a NULL, silently; TIMESTAMP alike)
/// and a DECIMAL precision or scale out of range (polars panicked).
fn check_typed_literals(e: &Expr) -> Result<(), SqlError> {
    match e {
        Expr::TypedString(ts)
            if matches!(ts.data_type, DataType::Date | DataType::Timestamp(..)) =>
        {
            let Value::SingleQuotedString(text) = &ts.value.value else {
                return Ok(());
            };
            let head = text.trim().get(..10).unwrap_or(text.trim());
            let shaped = head.len() == 10
                && head.bytes().enumerate().all(|(i, b)| {
                    if i == 4 || i == 7 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            if shaped && NaiveDate::parse_from_str(head, "%Y-%m-%d").is_err() {
                let start = ts.value.span.start;
                return Err(SqlError::at(
                    format!("{e}: {head} is not a day of the calendar"),
                    Some(Pos {
                        line: start.line,
                        column: start.column,
                    }),
                ));
            }
            Ok(())
        }
        Expr::Cast { data_type, .. } => {
            use sqlparser::ast::ExactNumberInfo as N;
            let info = match data_type {
                DataType::Decimal(i) | DataType::Numeric(i) | DataType::Dec(i) => i,
                _ => return Ok(()),
            };
            let (p, s) = match info {
                N::None => return Ok(()),
                N::Precision(p) => (*p, 0),
                N::PrecisionAndScale(p, s) => (*p, *s),
            };
            if !(1..=38).contains(&p) || s < 0 || s as u64 > p {
                return Err(SqlError::at(
                    format!(
                        "{data_type}: a DECIMAL's precision is 1 to 38 digits and its scale 0 \
                         to the precision"
                    ),
                    None,
                ));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A check's SQL condition (`where`, `expression`) as polars should read it: the literal
/// fixes a query gets (`1e6`, dates against `dt`, intervals polars would panic on). Text this
/// parser cannot read is returned as it is, for polars to report.
pub fn expression_for_polars(text: &str) -> Result<String, SqlError> {
    expression_for_polars_on(text, None, &[])
}

/// A check's condition in the dialect of queries: `{{ ds }}` and the other placeholders of
/// the run `date` (a neutral date when it is not known, for validation), the functions
/// Panorama adds (`DATE_TRUNC`, `DATE_DIFF`, `CURRENT_DATE`, …), and a date written as text
/// beside a date or timestamp column (`apply_date >= '2020-01-01'`), which a query reads
/// through the table's schema. `temporal` names the table's date (`false`) and timestamp
/// (`true`) columns, when known.
pub fn expression_for_polars_on(
    text: &str,
    date: Option<NaiveDate>,
    temporal: &[(String, bool)],
) -> Result<String, SqlError> {
    let rendered = match date {
        Some(d) => render(text, &Params::for_date(d))?,
        None => render_for_analysis(text),
    };
    let Ok(mut e) = parse_expr(&rendered) else {
        return Ok(rendered);
    };
    // As in queries, CURRENT_DATE is the run date (a backfill checks as of its night).
    let mut clock = Clock::system();
    if let Some(d) = date {
        clock.today = d;
    }
    let mut problem = None;
    let _ = sqlparser::ast::visit_expressions_mut(&mut e, |x| {
        if let Err(err) = check_typed_literals(x) {
            problem = Some(err);
            return ControlFlow::Break(());
        }
        whole_mantissa_exponents(x);
        timestamp_literal_casts(x);
        uniform_number_list(x);
        date_texts_beside_columns(x, temporal);
        let rewritten = date_literals_against_dt(x)
            .and_then(|()| check_interval(x))
            .and_then(|()| rewrite_function(x, &clock));
        match rewritten {
            Ok(Some(new)) => {
                *x = new;
                ControlFlow::Continue(())
            }
            Ok(None) => ControlFlow::Continue(()),
            Err(err) => {
                problem = Some(err);
                ControlFlow::Break(())
            }
        }
    });
    match problem {
        Some(err) => Err(err),
        None => Ok(e.to_string()),
    }
}

/// `d >= '2020-01-01'` with `d` a date (or timestamp) column: the text as a typed literal.
fn date_texts_beside_columns(e: &mut Expr, temporal: &[(String, bool)]) {
    let Expr::BinaryOp { left, op, right } = e else {
        return;
    };
    if !matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
    ) {
        return;
    }
    let kind = |x: &Expr| match x {
        Expr::Identifier(id) => temporal
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&id.value))
            .map(|(_, ts)| *ts),
        _ => None,
    };
    let (timestamp, text_side) = match (kind(left), kind(right)) {
        (Some(ts), None) => (ts, right.as_mut()),
        (None, Some(ts)) => (ts, left.as_mut()),
        _ => return,
    };
    let Expr::Value(v) = &*text_side else {
        return;
    };
    let Value::SingleQuotedString(t) = &v.value else {
        return;
    };
    let t = t.trim();
    let literal = if NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok() {
        if timestamp {
            format!("TIMESTAMP '{t} 00:00:00'")
        } else {
            format!("DATE '{t}'")
        }
    } else if timestamp && chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S").is_ok() {
        format!("TIMESTAMP '{t}'")
    } else {
        return;
    };
    if let Ok(typed) = parse_expr(&literal) {
        *text_side = typed;
    }
}

/// `CAST('2026-11-26 08:00:01' AS TIMESTAMP)` as `TIMESTAMP '2026-11-26 08:00:01'`: polars
/// casts text to a timestamp only in the ISO form with a `T`.
fn timestamp_literal_casts(e: &mut Expr) {
    let Expr::Cast {
        expr, data_type, ..
    } = &*e
    else {
        return;
    };
    if !matches!(data_type, DataType::Timestamp(..) | DataType::Datetime(_)) {
        return;
    }
    let Expr::Value(v) = &**expr else {
        return;
    };
    let Value::SingleQuotedString(text) = &v.value else {
        return;
    };
    let t = text.trim();
    let ok = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .any(|f| chrono::NaiveDateTime::parse_from_str(t, f).is_ok());
    if ok {
        if let Ok(lit) = parse_expr(&format!("TIMESTAMP '{t}'")) {
            *e = lit;
        }
    }
}

/// `1e6` as `1.0e6`: polars reads an exponent only after a decimal point.
fn whole_mantissa_exponents(e: &mut Expr) {
    if let Expr::Value(v) = e {
        if let Value::Number(n, _) = &mut v.value {
            if let Some(at) = n.find(['e', 'E']).filter(|_| !n.contains('.')) {
                n.insert_str(at, ".0");
            }
        }
    }
}

/// An `INTERVAL '…'` text polars cannot read is an error here: polars-sql unwraps its parse
/// and panicked on `'1 fortnight'`, `'1.5 days'` or `'5'`.
fn check_interval(e: &Expr) -> Result<(), SqlError> {
    let Expr::Interval(iv) = e else {
        return Ok(());
    };
    let Expr::Value(v) = &*iv.value else {
        return Ok(());
    };
    let Value::SingleQuotedString(text) = &v.value else {
        return Ok(());
    };
    if iv.leading_field.is_some() || text.contains('-') {
        return Ok(()); // polars refuses these itself, with a clear error
    }
    match polars::prelude::Duration::try_parse_interval(text) {
        // polars panicked on dates beyond its calendar (`+ INTERVAL '100000000 years'`).
        Ok(d)
            if d.months().unsigned_abs() > 120_000
                || d.weeks().unsigned_abs() > 530_000
                || d.days().unsigned_abs() > 3_700_000 =>
        {
            Err(SqlError::at(
                format!("INTERVAL '{text}' reaches beyond 10,000 years"),
                None,
            ))
        }
        Ok(_) => Ok(()),
        Err(_) => Err(SqlError::at(
            format!(
                "INTERVAL '{text}' is not an interval: write whole numbers with units, such as \
                 '30 days', '2 weeks', '3 months', '1 year', '12 hours', '1 day 6 hours'"
            ),
            None,
        )),
    }
}

/// The conjunction of `conditions`, None when there are none.
fn and_all(conditions: Vec<Expr>) -> Option<Expr> {
    conditions.into_iter().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

/// `dt` itself, bare or qualified (not a cast of it, which may compare as text).
fn is_plain_dt(e: &Expr) -> bool {
    match e {
        Expr::Nested(inner) => is_plain_dt(inner),
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => is_dt(e),
        _ => false,
    }
}

/// A `'YYYY-MM-DD'` text literal compared with `dt` becomes `DATE 'YYYY-MM-DD'`: polars casts
/// such a literal only when it stands right of the first table's `dt`, and failed with
/// "cannot compare date to a string" for `'…' = dt`, `b.dt = '…'`, `IN` lists and `BETWEEN`.
fn date_literals_against_dt(e: &mut Expr) -> Result<(), SqlError> {
    fn as_date(x: &mut Expr) -> Result<(), SqlError> {
        let Expr::Value(v) = &*x else {
            return Ok(());
        };
        let Value::SingleQuotedString(text) = &v.value else {
            return Ok(());
        };
        let t = text.trim();
        let date = parse_date_text(t).filter(|d| d.format("%Y-%m-%d").to_string() == t);
        match date {
            Some(d) => {
                if let Ok(lit) = parse_expr(&format!("DATE '{}'", d.format("%Y-%m-%d"))) {
                    *x = lit;
                }
                Ok(())
            }
            // Shaped like a date but not one (`'2026-13-45'`): a usage error, not a failed run.
            None if t.len() == 10
                && t.bytes().enumerate().all(|(i, b)| match i {
                    4 | 7 => b == b'-',
                    _ => b.is_ascii_digit(),
                }) =>
            {
                Err(SqlError::at(
                    format!("'{t}' compared with dt is not a date"),
                    None,
                ))
            }
            None => Ok(()),
        }
    }
    match e {
        Expr::BinaryOp { left, op, right } if cmp_op(op).is_some() => {
            if is_plain_dt(left) {
                as_date(right)?;
            } else if is_plain_dt(right) {
                as_date(left)?;
            }
        }
        Expr::Between {
            expr, low, high, ..
        } if is_plain_dt(expr) => {
            as_date(low)?;
            as_date(high)?;
        }
        Expr::InList { expr, list, .. } if is_plain_dt(expr) => {
            for x in list.iter_mut() {
                as_date(x)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn parse_expr(text: &str) -> Result<Expr, SqlError> {
    Parser::new(&GenericDialect)
        .try_with_sql(text)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::at(format!("internal rewrite failed for {text}: {e}"), None))
}

/// The name polars gives an unnamed projection: its first column (left to right), `len` for
/// `COUNT(*)`, `literal` when it has no column. Approximate, used only to spot clashes.
fn polars_default_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(i) => return ident_name(i),
        Expr::CompoundIdentifier(ids) => return ids.last().map(ident_name).unwrap_or_default(),
        Expr::Function(f) if f.over.is_none() => {
            if let FunctionArguments::List(l) = &f.args {
                if name_parts(&f.name).join(".") == "count"
                    && matches!(
                        l.args.as_slice(),
                        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
                    )
                {
                    return "len".into();
                }
            }
        }
        _ => {}
    }
    let mut first = None;
    outside_subqueries(e, |e| {
        if first.is_none() {
            match e {
                Expr::Identifier(i) => first = Some(ident_name(i)),
                Expr::CompoundIdentifier(ids) => first = ids.last().map(ident_name),
                _ => {}
            }
        }
    });
    first.unwrap_or_else(|| "literal".into())
}

/// polars names an unnamed expression after its first column, so `SELECT MIN(x), MAX(x)`
/// fails with a duplicate name; give such expressions their SQL text as a name (as DuckDB
/// does) when their default names clash, and leave every other projection as it is.
/// The result's unnamed expressions are named by their SQL text, as DuckDB names them:
/// polars named `count(*)` "len" and `avg(pd)` "pd", which read as the raw column. Only the
/// outermost SELECT (the first branch of a set operation): inner queries keep polars' names,
/// which outer references may rely on.
fn name_result_expressions(stmt: &mut Statement) {
    use sqlparser::ast::{SelectItem, SetExpr};
    let Statement::Query(q) = stmt else {
        return;
    };
    let mut body = q.body.as_mut();
    loop {
        match body {
            SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            SetExpr::Query(inner) => body = inner.body.as_mut(),
            _ => break,
        }
    }
    let SetExpr::Select(s) = body else {
        return;
    };
    let mut taken: BTreeSet<String> = s
        .projection
        .iter()
        .filter_map(|p| match p {
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            SelectItem::UnnamedExpr(e @ (Expr::Identifier(_) | Expr::CompoundIdentifier(_))) => {
                Some(polars_default_name(e))
            }
            _ => None,
        })
        .collect();
    for item in &mut s.projection {
        let SelectItem::UnnamedExpr(e) = item else {
            continue;
        };
        if matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) {
            continue;
        }
        let base = e.to_string();
        let mut alias = base.clone();
        let mut k = 2;
        while taken.contains(&alias.to_lowercase()) {
            alias = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(alias.to_lowercase());
        *item = SelectItem::ExprWithAlias {
            expr: e.clone(),
            alias: Ident::with_quote('"', alias),
        };
    }
}

fn alias_clashing_projections(s: &mut Select) {
    use sqlparser::ast::SelectItem;
    let names: Vec<Option<String>> = s
        .projection
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => Some(polars_default_name(e)),
            SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            _ => None,
        })
        .collect();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for n in names.iter().flatten() {
        *count.entry(n.as_str()).or_default() += 1;
    }
    let mut taken: BTreeSet<String> = names.iter().flatten().cloned().collect();
    let mut columns_seen: BTreeSet<String> = BTreeSet::new();
    let mut new_items = Vec::with_capacity(s.projection.len());
    for (item, name) in s.projection.drain(..).zip(&names) {
        // An expression whose default name clashes is named by its SQL text (as DuckDB does);
        // the same column name twice (`a.id, b.id`): the first keeps it, a later one is named
        // by its text (`b.id`).
        let clashes = match (&item, name.as_deref()) {
            (
                SelectItem::UnnamedExpr(Expr::Identifier(_) | Expr::CompoundIdentifier(_)),
                Some(n),
            ) => !columns_seen.insert(n.to_string()),
            (SelectItem::UnnamedExpr(_), Some(n)) => count.get(n).copied().unwrap_or(0) > 1,
            _ => false,
        };
        match item {
            SelectItem::UnnamedExpr(e) if clashes => {
                let base = e.to_string();
                let mut alias = base.clone();
                let mut k = 2;
                while taken.contains(&alias) {
                    alias = format!("{base}_{k}");
                    k += 1;
                }
                taken.insert(alias.clone());
                new_items.push(SelectItem::ExprWithAlias {
                    expr: e,
                    alias: Ident::with_quote('"', alias),
                });
            }
            other => new_items.push(other),
        }
    }
    s.projection = new_items;
}

/// DATE_TRUNC('unit', x), DATE_DIFF('unit', a, b) / DATEDIFF, APPROX_COUNT_DISTINCT(x),
/// CURRENT_DATE / TODAY() and CURRENT_TIMESTAMP / NOW().
fn rewrite_function(e: &Expr, clock: &Clock) -> Result<Option<Expr>, SqlError> {
    let Expr::Function(f) = e else {
        return Ok(None);
    };
    if f.over.is_some() {
        return Ok(None);
    }
    let name = name_parts(&f.name).join(".");
    let no_args = match &f.args {
        FunctionArguments::None => true,
        FunctionArguments::List(l) => l.args.is_empty(),
        _ => false,
    };
    if no_args {
        let text = match name.as_str() {
            "current_date" | "today" => format!("DATE '{}'", clock.today.format("%Y-%m-%d")),
            "current_timestamp" | "now" | "localtimestamp" => {
                format!("TIMESTAMP '{}'", clock.now.format("%Y-%m-%d %H:%M:%S%.3f"))
            }
            _ => return Ok(None),
        };
        return parse_expr(&text).map(Some);
    }
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    if let Some(spelled) = distinct_sum(f, &name, list)? {
        return Ok(Some(spelled));
    }
    let pos = name_pos(&f.name);
    let args: Vec<String> = list
        .args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x.to_string()),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    let unit_of = |i: usize| -> Result<String, SqlError> {
        match list.args.get(i) {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))) => match &v.value {
                Value::SingleQuotedString(s) => {
                    Ok(s.to_ascii_lowercase().trim_end_matches('s').to_string())
                }
                _ => Err(SqlError::at(
                    format!(
                        "{}: the unit must be a quoted string such as 'month'",
                        name.to_uppercase()
                    ),
                    Some(pos),
                )),
            },
            _ => Err(SqlError::at(
                format!(
                    "{}: the unit must be a quoted string such as 'month'",
                    name.to_uppercase()
                ),
                Some(pos),
            )),
        }
    };
    let days = |x: &str| format!("CAST(CAST({x} AS DATE) AS INTEGER)");
    let text = match name.as_str() {
        "date_trunc" => {
            if args.len() != 2 {
                return Err(SqlError::at("DATE_TRUNC takes ('unit', date)", Some(pos)));
            }
            let x = &args[1];
            match unit_of(0)?.as_str() {
                "day" => format!("CAST({x} AS DATE)"),
                "week" => format!("CAST({d} - (({d} + 3) % 7) AS DATE)", d = days(x)),
                // Integer day arithmetic: much faster than formatting and parsing strings.
                "month" => format!("CAST({} - EXTRACT(DAY FROM {x}) + 1 AS DATE)", days(x)),
                "quarter" => format!(
                    "DATE(CONCAT(STRFTIME({x}, '%Y'), '-', LPAD(CAST((EXTRACT(QUARTER FROM {x}) - 1) * 3 + 1 AS VARCHAR), 2, '0'), '-01'))"
                ),
                "year" => format!("CAST({} - EXTRACT(DOY FROM {x}) + 1 AS DATE)", days(x)),
                u => {
                    return Err(SqlError::at(
                        format!("DATE_TRUNC: unknown unit '{u}' (day, week, month, quarter, year)"),
                        Some(pos),
                    ))
                }
            }
        }
        "date_diff" | "datediff" => {
            if args.len() != 3 {
                return Err(SqlError::at(
                    format!(
                        "{} takes ('unit', start, end) and returns end - start",
                        name.to_uppercase()
                    ),
                    Some(pos),
                ));
            }
            let (a, b) = (&args[1], &args[2]);
            match unit_of(0)?.as_str() {
                "day" => format!("({} - {})", days(b), days(a)),
                // Whole weeks between the days, toward zero (FLOOR made -3 days week -1).
                "week" => format!("CAST(({} - {}) / 7.0 AS INTEGER)", days(b), days(a)),
                "month" => format!(
                    "((EXTRACT(YEAR FROM {b}) - EXTRACT(YEAR FROM {a})) * 12 + EXTRACT(MONTH FROM {b}) - EXTRACT(MONTH FROM {a}))"
                ),
                "year" => format!("(EXTRACT(YEAR FROM {b}) - EXTRACT(YEAR FROM {a}))"),
                u => {
                    return Err(SqlError::at(
                        format!("{}: unknown unit '{u}' (day, week, month, year)", name.to_uppercase()),
                        Some(pos),
                    ))
                }
            }
        }
        // polars raised integers in integers: POWER(2, 31) wrapped to -2147483648.
        "power" | "pow" if args.len() == 2 => {
            format!("POWER(CAST(({}) AS DOUBLE), {})", args[0], args[1])
        }
        "date_part" | "datepart" if args.len() == 2 && unit_of(0).is_ok_and(|u| u == "epoch") => {
            format!("EXTRACT(EPOCH FROM CAST(({}) AS TIMESTAMP))", args[1])
        }
        "approx_count_distinct" => {
            if args.len() != 1 {
                return Err(SqlError::at(
                    "APPROX_COUNT_DISTINCT takes one argument",
                    Some(pos),
                ));
            }
            format!("COUNT(DISTINCT {})", args[0])
        }
        // polars' STRPOS counts bytes (28 for the 10th character of a Chinese text): the
        // position in characters is one more than the length of the text before the match.
        "strpos" if args.len() == 2 => char_position(&args[0], &args[1]),
        // polars refuses negative decimals (to thousands: ROUND(x, -3)); same rounding of
        // halves as ROUND(x) (to even).
        "round" if args.len() == 2 => match &list.args[1] {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::UnaryOp {
                op: sqlparser::ast::UnaryOperator::Minus,
                expr,
            })) => match expr.as_ref() {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => match n.parse::<i32>() {
                        Ok(k @ 1..=18) => {
                            let scale = 10f64.powi(k);
                            format!("(ROUND({} / {scale:.1}) * {scale:.1})", args[0])
                        }
                        _ => return Ok(None),
                    },
                    _ => return Ok(None),
                },
                _ => return Ok(None),
            },
            _ => return Ok(None),
        },
        _ => return Ok(None),
    };
    parse_expr(&text).map(Some)
}

/// `SUM(DISTINCT x)` and `AVG(DISTINCT x)`, which polars refuses: the sum or mean of the
/// group's distinct values, through its list functions. NULLs are left out as SQL leaves
/// them; a group with no value gives NULL (an empty list sums to 0).
fn distinct_sum(
    f: &sqlparser::ast::Function,
    name: &str,
    list: &sqlparser::ast::FunctionArgumentList,
) -> Result<Option<Expr>, SqlError> {
    let distinct = matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    );
    if !distinct || !matches!(name, "sum" | "avg" | "mean") || f.filter.is_some() {
        return Ok(None);
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] = list.args.as_slice() else {
        return Ok(None);
    };
    let values = format!("ARRAY_UNIQUE(ARRAY_AGG({x}))");
    let text = if name == "sum" {
        format!("CASE WHEN COUNT({x}) = 0 THEN NULL ELSE ARRAY_SUM({values}) END")
    } else {
        format!("ARRAY_MEAN({values})")
    };
    parse_expr(&text).map(Some)
}

/// Calls whose result polars types as an unsigned or narrow integer (`COUNT`, `LENGTH`,
/// `STRPOS`, `ROW_NUMBER`, `RANK`: u32; `DATE_PART`: i8; `SUM` of an integer constant
/// counts rows), on which arithmetic wraps silently: `t.n - y.n` gave 4294967294 for -2,
/// `-COUNT(*)` 4294962159. They are cast to BIGINT, their type in DuckDB.
fn narrow_integer_call(e: &Expr) -> bool {
    let Expr::Function(f) = e else {
        return false;
    };
    let name = name_parts(&f.name).join(".");
    let args = match &f.args {
        FunctionArguments::List(l) => l.args.as_slice(),
        _ => &[],
    };
    match name.as_str() {
        "count" | "length" | "char_length" | "character_length" | "octet_length" | "strpos"
        | "row_number" | "rank" | "dense_rank" | "date_diff" | "datediff" => true,
        "date_part" | "datepart" => !matches!(args.first(),
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v))))
                if v.value.to_string().to_ascii_lowercase().contains("epoch")),
        "sum" => matches!(args, [FunctionArg::Unnamed(FunctionArgExpr::Expr(Expr::Value(v)))]
            if matches!(&v.value, Value::Number(n, _) if n.parse::<i64>().is_ok())),
        _ => false,
    }
}

/// Whether `e` reads a row: it names a column or holds a subquery. An expression that does
/// not is the same on every row.
fn reads_rows(e: &Expr) -> bool {
    // A call may be an aggregate (`SUM(COUNT(*)) OVER ()`) or a window: not a constant,
    // whatever its arguments.
    sqlparser::ast::visit_expressions(e, |x| match x {
        Expr::Identifier(_)
        | Expr::CompoundIdentifier(_)
        | Expr::Function(_)
        | Expr::Subquery(_)
        | Expr::Exists { .. }
        | Expr::InSubquery { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `COUNT` and `SUM` of an expression that reads no row, and any aggregate whose `FILTER`
/// reads no row: polars evaluated them once instead of once per row (`SUM(1)` was 1, `COUNT(*)
/// FILTER (WHERE 1 = 1)` was 1, in groups and windows alike). They are spelled with `COUNT(*)`
/// over the same rows (same window, same filter), which polars counts right.
fn constant_aggregate(e: &Expr) -> Option<Expr> {
    let Expr::Function(f) = e else {
        return None;
    };
    let name = name_parts(&f.name).join(".");
    if !matches!(name.as_str(), "count" | "sum") {
        return None;
    }
    let FunctionArguments::List(list) = &f.args else {
        return None;
    };
    // COUNT(*) over the rows this call aggregates.
    let count_rows = |f: &sqlparser::ast::Function| {
        let mut c = f.clone();
        c.name = ObjectName::from(vec![Ident::new("COUNT")]);
        c.args = FunctionArguments::List(sqlparser::ast::FunctionArgumentList {
            duplicate_treatment: None,
            args: vec![FunctionArg::Unnamed(FunctionArgExpr::Wildcard)],
            clauses: Vec::new(),
        });
        c
    };
    if let Some(cond) = f.filter.as_deref().filter(|c| !reads_rows(c)) {
        let mut unfiltered = f.clone();
        unfiltered.filter = None;
        let unfiltered = Expr::Function(unfiltered);
        let inner = constant_aggregate(&unfiltered).unwrap_or(unfiltered);
        let none = if name == "count" { "0" } else { "NULL" };
        return parse_expr(&format!("CASE WHEN ({cond}) THEN {inner} ELSE {none} END")).ok();
    }
    let [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] = list.args.as_slice() else {
        return None;
    };
    if reads_rows(x) {
        return None;
    }
    let distinct = matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    );
    let rows = count_rows(f);
    let text = match (name.as_str(), distinct) {
        ("count", false) => format!("CASE WHEN ({x}) IS NULL THEN 0 ELSE {rows} END"),
        ("count", true) => format!("CASE WHEN ({x}) IS NULL OR {rows} = 0 THEN 0 ELSE 1 END"),
        (_, false) => format!("CASE WHEN {rows} = 0 THEN NULL ELSE ({x}) * {rows} END"),
        (_, true) => format!("CASE WHEN {rows} = 0 THEN NULL ELSE ({x}) END"),
    };
    parse_expr(&text).ok()
}

/// The 1-based position in characters of `sub` in `x` (0 when absent, NULL for a NULL): one
/// more than the length of the text before the match. polars' STRPOS counts bytes.
fn char_position(x: &str, sub: &str) -> String {
    format!(
        "CASE WHEN ({x}) IS NULL OR ({sub}) IS NULL THEN NULL \
         WHEN STRPOS({x}, {sub}) = 0 THEN 0 WHEN ({sub}) = '' THEN 1 \
         ELSE LENGTH(SPLIT_PART({x}, {sub}, 1)) + 1 END"
    )
}

/// Table references of a whole SQL text for dependency inference: (written name, position),
/// CTE names excluded. Placeholders are replaced by a neutral date first.
pub fn references(sql: &str) -> Result<Vec<TableOcc>, SqlError> {
    let text = render_for_analysis(sql);
    let a = analyze(&text)?;
    if let Some((f, p)) = a.table_functions.first() {
        return Err(SqlError::at(
            format!("table function {f}(…) in a model: models read warehouse tables only, by name"),
            Some(*p),
        ));
    }
    Ok(a.tables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn placeholders() {
        let p = Params::for_date(d("2026-11-26")).with("branch", "0101");
        assert_eq!(
            render(
                "WHERE d = '{{ ds }}' AND b = '{{branch}}' -- {{ds_nodash}}",
                &p
            )
            .unwrap(),
            "WHERE d = '2026-11-26' AND b = '0101' -- 20261126"
        );
        let e = render("SELECT 1\nWHERE x = '{{ dss }}'", &p).unwrap_err();
        assert!(e.message.contains("unknown placeholder {{ dss }}"), "{e:?}");
        assert!(e.message.contains("ds, ds_nodash"), "{e:?}");
        assert_eq!(
            e.pos,
            Some(Pos {
                line: 2,
                column: 12
            })
        );
        assert!(render("x {{ ds", &p).is_err());
    }

    #[test]
    fn a_cte_shadows_tables_only_in_its_scope() {
        // An inner WITH enterprises does not hide the real table read by the outer query.
        let a = analyze(
            "SELECT * FROM (WITH enterprises AS (SELECT 1 AS x) SELECT * FROM enterprises) s \
             JOIN enterprises e ON e.x = s.x",
        )
        .unwrap();
        let names: Vec<String> = a.tables.iter().map(|t| t.parts.join(".")).collect();
        assert_eq!(names, ["enterprises"]);
        let a = analyze("WITH t AS (SELECT 1 AS x) SELECT * FROM (SELECT * FROM t) s").unwrap();
        assert!(
            a.tables.is_empty(),
            "an outer CTE is seen in a nested query"
        );
    }

    #[test]
    fn references_layers_bare_names_and_ctes() {
        let sql = "WITH recent AS (SELECT * FROM clean.transactions WHERE amount > 0)
                   SELECT a.*, r.amount FROM applications a
                   JOIN recent r ON r.credit_code = a.credit_code
                   LEFT JOIN feature.txn_features f USING (credit_code)
                   WHERE a.credit_code IN (SELECT credit_code FROM Clean.Enterprises)";
        let refs = references(sql).unwrap();
        let names: Vec<String> = refs.iter().map(|r| r.written()).collect();
        assert_eq!(
            names,
            [
                "clean.transactions",
                "applications",
                "feature.txn_features",
                "clean.enterprises"
            ]
        );
        assert_eq!(refs[1].alias.as_deref(), Some("a"));
        assert_eq!(refs[1].pos.line, 2);
    }

    #[test]
    fn writes_are_refused_before_and_after_parsing() {
        for (sql, kw) in [
            ("INSERT INTO clean.x VALUES (1)", "INSERT"),
            ("  -- note\n drop table clean.x", "DROP"),
            ("COPY clean.x TO '/tmp/x.csv'", "COPY"),
            ("create table t as select 1", "CREATE"),
            ("UPDATE t SET a = 1", "UPDATE"),
            ("DELETE FROM t", "DELETE"),
            ("SELECT 1; DROP TABLE t", "DROP"),
            ("SELECT * INTO newt FROM t", "SELECT … INTO"),
            ("EXPLAIN DELETE FROM t", "DELETE"),
        ] {
            let e = analyze(sql).unwrap_err();
            assert!(e.read_only, "{sql}: {e:?}");
            assert!(e.message.starts_with(kw), "{sql}: {}", e.message);
        }
        assert!(analyze("VALUES (1, 2)").is_ok());
        assert!(analyze("EXPLAIN SELECT 1").unwrap().explain);
        assert!(analyze("SHOW TABLES").unwrap().show_tables);
        let e = analyze("SELECT 1; SELECT 2").unwrap_err();
        assert!(e.message.contains("one statement"), "{e:?}");
    }

    #[test]
    fn syntax_errors_point_at_the_token() {
        let sql = "SELECT a, b\nFROM t\nWHERE x = = 1";
        let e = analyze(sql).unwrap_err();
        assert!(!e.read_only);
        assert!(e.message.starts_with("SQL syntax error"), "{e:?}");
        let pos = e.pos.expect("a position");
        assert_eq!((pos.line, pos.column), (3, 11), "{e:?}");
        let shown = e.render(sql);
        assert!(
            shown.ends_with("(line 3, column 11)\n  WHERE x = = 1\n            ^"),
            "{shown}"
        );
        assert!(shown.trim_end().ends_with('^'), "{shown}");
    }

    fn sel(sql: &str) -> Vec<DtSel> {
        analyze(sql)
            .unwrap()
            .tables
            .into_iter()
            .map(|t| t.dt)
            .collect()
    }

    #[test]
    fn dt_predicates_select_partitions() {
        let s = sel("SELECT * FROM clean.tx");
        assert_eq!(s, [DtSel::Latest]);
        let s = sel("SELECT * FROM clean.tx WHERE dt >= DATE '2026-11-01' - INTERVAL '1 month' AND amount > 0");
        let DtSel::Where(p) = &s[0] else {
            panic!("{s:?}")
        };
        assert!(p.eval(d("2026-10-01")) && !p.eval(d("2026-09-30")));
        let s = sel("SELECT * FROM clean.tx t WHERE t.dt BETWEEN '2026-11-01' AND '2026-11-03' OR t.dt = '2026-12-24'");
        let DtSel::Where(p) = &s[0] else {
            panic!("{s:?}")
        };
        assert!(p.eval(d("2026-11-02")) && p.eval(d("2026-12-24")) && !p.eval(d("2026-11-04")));
        let s = sel("SELECT * FROM clean.tx WHERE dt IN ('2026-11-01', '2026-11-05')");
        let DtSel::Where(p) = &s[0] else {
            panic!("{s:?}")
        };
        assert!(p.eval(d("2026-11-05")) && !p.eval(d("2026-11-02")));
        assert!(
            matches!(&sel("SELECT * FROM clean.tx WHERE dt IS NOT NULL")[0], DtSel::Where(p) if p.eval(d("1999-01-01")))
        );
        // Not evaluable from the text: every partition.
        assert_eq!(
            sel("SELECT * FROM clean.tx WHERE dt > (SELECT max(dt) FROM clean.tx)")[0],
            DtSel::All
        );
        assert_eq!(
            sel("SELECT * FROM clean.tx WHERE dt = '2026-11-01' OR amount > 5")[0],
            DtSel::All
        );
        // Qualified to one side of a join.
        let s =
            sel("SELECT * FROM clean.a x JOIN clean.b y ON x.k = y.k WHERE y.dt = '2026-11-01'");
        assert_eq!(s[0], DtSel::Latest);
        assert!(matches!(s[1], DtSel::Where(_)));
        // A subquery's `dt` is its own.
        let s =
            sel("SELECT * FROM clean.a WHERE k IN (SELECT k FROM clean.b WHERE dt = '2026-11-01')");
        assert_eq!(s[0], DtSel::Latest);
        assert!(matches!(s[1], DtSel::Where(_)));
    }

    #[test]
    fn clashing_names_and_the_clock() {
        let clock = Clock {
            today: NaiveDate::from_ymd_opt(2026, 11, 26).unwrap(),
            now: NaiveDate::from_ymd_opt(2026, 11, 26)
                .unwrap()
                .and_hms_opt(8, 0, 0)
                .unwrap(),
        };
        let a = analyze("SELECT k, MIN(x), MAX(x), MAX(x) + 1 AS y, COUNT(*) FROM t GROUP BY k")
            .unwrap();
        let sql = rewrite(&a, &HashMap::new(), &clock).unwrap();
        assert_eq!(
            sql,
            "SELECT k, MIN(x) AS \"MIN(x)\", MAX(x) AS \"MAX(x)\", MAX(x) + 1 AS y, CAST(COUNT(*) AS BIGINT) AS \"COUNT(*)\" FROM t GROUP BY k"
        );
        // The same column twice: the first keeps its name.
        let a = analyze("SELECT a.id, b.id, id FROM t a JOIN u b ON a.id = b.id").unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT a.id, b.id AS \"b.id\", id AS \"id_2\" FROM t a JOIN u b ON a.id = b.id"
        );
        // LEFT JOIN: conditions on the joined table alone move into a subquery; mixed ones
        // are refused.
        let a = analyze(
            "SELECT * FROM e LEFT JOIN a ON a.k = e.k AND a.amount > 100 AND e.s = 'x' WHERE a.k IS NULL",
        )
        .unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT * FROM e LEFT JOIN (SELECT * FROM a WHERE a.amount > 100) AS a ON a.k = e.k AND e.s = 'x' WHERE a.k IS NULL"
        );
        // IN lists: integers beside decimals are written as decimals (not beyond 2^53), and
        // literals lose their parentheses.
        for (sql, want) in [
            (
                "SELECT x FROM t WHERE x IN ((0), (-1), 15473.33)",
                "SELECT x FROM t WHERE x IN (0.0, -1.0, 15473.33)",
            ),
            (
                "SELECT x FROM t WHERE x IN (9007199254740993, 0.5)",
                "SELECT x FROM t WHERE x IN (9007199254740993, 0.5)",
            ),
            (
                "SELECT x FROM t WHERE x IN (1, 2)",
                "SELECT x FROM t WHERE x IN (1, 2)",
            ),
        ] {
            let a = analyze(sql).unwrap();
            assert_eq!(rewrite(&a, &HashMap::new(), &clock).unwrap(), want);
        }
        // The same in a check's `where` (it failed there).
        assert_eq!(
            expression_for_polars("amount IN (0, 15473.33)").unwrap(),
            "amount IN (0.0, 15473.33)"
        );
        // INNER JOIN: the same move (polars could not find a column of the joined table in
        // `ON`); a mixed condition stays, as polars reads it there.
        let a = analyze("SELECT * FROM e JOIN a ON a.k = e.k AND a.g = 'x' AND a.d > e.d").unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT * FROM e JOIN (SELECT * FROM a WHERE a.g = 'x') AS a ON a.k = e.k AND a.d > e.d"
        );
        // SEMI and ANTI joins: the same move; mixed conditions are refused (polars filtered
        // after the join: a SEMI JOIN gave more rows than its left table).
        let a = analyze("SELECT * FROM e SEMI JOIN a ON a.k = e.k AND a.s = 'x'").unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT * FROM e SEMI JOIN (SELECT * FROM a WHERE a.s = 'x') AS a ON a.k = e.k"
        );
        let a = analyze("SELECT * FROM e ANTI JOIN a ON a.k = e.k AND a.d > e.d").unwrap();
        let err = rewrite(&a, &HashMap::new(), &clock).unwrap_err();
        assert!(err.message.contains("MIN or MAX"), "{}", err.message);
        // An equality with a call on one side is no key (a RIGHT JOIN would filter after).
        let a = analyze("SELECT * FROM e RIGHT JOIN a ON a.k = e.k AND a.g = UPPER('x')").unwrap();
        let err = rewrite(&a, &HashMap::new(), &clock).unwrap_err();
        assert!(err.message.contains("RIGHT JOIN"), "{}", err.message);
        let a = analyze("SELECT * FROM e ANTI JOIN a ON a.k = e.k AND e.amount > 5").unwrap();
        let err = rewrite(&a, &HashMap::new(), &clock).unwrap_err();
        assert!(
            err.message.contains("not on the joined table a alone"),
            "{}",
            err.message
        );
        let a = analyze("SELECT * FROM e LEFT JOIN a ON a.k = e.k AND a.d > e.d").unwrap();
        let err = rewrite(&a, &HashMap::new(), &clock).unwrap_err();
        assert!(
            err.message.contains("mixes the joined table a"),
            "{}",
            err.message
        );
        let a = analyze("SELECT x FROM t WHERE amount < 1e3 AND y > 2E5 AND z < 1.5e2").unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT x FROM t WHERE amount < 1.0e3 AND y > 2.0E5 AND z < 1.5e2"
        );
        assert_eq!(
            expression_for_polars("amount < 1e3 AND dt = '2026-11-26'").unwrap(),
            "amount < 1.0e3 AND dt = DATE '2026-11-26'"
        );
        let a = analyze("SELECT * FROM t WHERE dt = '2026-13-45'").unwrap();
        let err = rewrite(&a, &HashMap::new(), &clock).unwrap_err();
        assert!(err.message.contains("is not a date"), "{}", err.message);
        // An interval polars cannot read is refused here (polars-sql panicked on it).
        for bad in ["1 fortnight", "abc", "5", "1.5 days"] {
            let a = analyze(&format!("SELECT d + INTERVAL '{bad}' FROM t")).unwrap();
            let err = rewrite(&a, &HashMap::new(), &clock).unwrap_err();
            assert!(
                err.message.contains("is not an interval"),
                "{bad}: {}",
                err.message
            );
        }
        let a =
            analyze("SELECT d + INTERVAL '30 days', d - INTERVAL '1 day 6 hours' FROM t").unwrap();
        assert!(rewrite(&a, &HashMap::new(), &clock).is_ok());
        // The result's expressions are named by their text (polars named them "x" and "y");
        // an inner query's keep polars' names, which the outer query may use.
        let a = analyze("SELECT CAST(x AS DOUBLE), SUM(y) FROM t GROUP BY x").unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT CAST(x AS DOUBLE) AS \"CAST(x AS DOUBLE)\", SUM(y) AS \"SUM(y)\" FROM t GROUP BY x"
        );
        let a = analyze("SELECT x FROM (SELECT CAST(x AS DOUBLE) FROM t) s").unwrap();
        assert_eq!(
            rewrite(&a, &HashMap::new(), &clock).unwrap(),
            "SELECT x FROM (SELECT CAST(x AS DOUBLE) FROM t) s"
        );
        let a =
            analyze("SELECT CURRENT_DATE AS d, NOW() AS n FROM t WHERE d < CURRENT_DATE").unwrap();
        let sql = rewrite(&a, &HashMap::new(), &clock).unwrap();
        assert!(sql.contains("DATE '2026-11-26' AS d"), "{sql}");
        assert!(
            sql.contains("TIMESTAMP '2026-11-26 08:00:00.000' AS n"),
            "{sql}"
        );
    }

    #[test]
    fn check_expressions_refuse_impossible_dates() {
        // Regression: the date became NULL and the check passed every row.
        let e = expression_for_polars("updated_at < DATE '2026-02-30'").unwrap_err();
        assert!(
            e.message.contains("not a day of the calendar"),
            "{}",
            e.message
        );
        assert!(expression_for_polars("updated_at < DATE '2026-02-28'").is_ok());
    }

    /// Regression: check conditions refused the dialect of queries (`DATE_DIFF`,
    /// `CURRENT_DATE`, `{{ ds }}`) and failed on a date written as text beside a date column.
    #[test]
    fn placeholders_in_comments_are_text() {
        let p = Params::for_date(NaiveDate::from_ymd_opt(2026, 11, 26).unwrap());
        let sql = "SELECT '{{ ds }}' AS d -- was '{{ old }}'\n/* {{ gone }} {{ ds }} */ FROM t";
        assert_eq!(
            render(sql, &p).unwrap(),
            "SELECT '2026-11-26' AS d -- was '{{ old }}'\n/* {{ gone }} 2026-11-26 */ FROM t"
        );
        // A `--` inside quotes is no comment.
        assert!(render("SELECT '--' || '{{ nope }}'", &p).is_err());
    }

    #[test]
    fn check_conditions_speak_the_query_dialect() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 26);
        let temporal = [("apply_date".to_string(), false), ("ts".to_string(), true)];
        let e = expression_for_polars_on(
            "apply_date <= DATE '{{ ds }}' AND DATE_DIFF('day', apply_date, ts) <= 30",
            d,
            &temporal,
        )
        .unwrap();
        assert!(e.contains("DATE '2026-11-26'"), "{e}");
        assert!(!e.to_lowercase().contains("date_diff"), "{e}");
        // CURRENT_DATE is the run date, not the clock's (a backfill checks as of its night).
        let e = expression_for_polars_on("apply_date <= CURRENT_DATE", d, &temporal).unwrap();
        assert_eq!(e, "apply_date <= DATE '2026-11-26'");
        let e = expression_for_polars_on(
            "apply_date >= '2020-01-01' AND ts < '2026-01-01'",
            d,
            &temporal,
        )
        .unwrap();
        assert!(e.contains("apply_date >= DATE '2020-01-01'"), "{e}");
        assert!(e.contains("ts < TIMESTAMP '2026-01-01 00:00:00'"), "{e}");
        // Without a run date (validation) the placeholders still parse.
        assert!(expression_for_polars_on("apply_date <= DATE '{{ ds }}'", None, &[]).is_ok());
        assert!(expression_for_polars("d <= CURRENT_DATE")
            .unwrap()
            .contains("DATE '"));
    }

    #[test]
    fn rewrite_renames_and_spells_extensions() {
        let a = analyze(
            "SELECT clean.applications.amount, applications.status, DATE_TRUNC('month', apply_date) m,
                    DATE_DIFF('day', apply_date, DATE '2026-11-26') age, APPROX_COUNT_DISTINCT(imei) n
             FROM clean.applications GROUP BY 1, 2, 3, 4",
        )
        .unwrap();
        let mut b = HashMap::new();
        b.insert(
            a.tables[0].pos,
            Binding {
                registered: "__t0".into(),
                layer: "clean".into(),
                table: "applications".into(),
            },
        );
        let sql = rewrite(&a, &b, &Clock::system()).unwrap();
        assert!(sql.contains("FROM __t0 AS \"applications\""), "{sql}");
        assert!(sql.contains("SELECT applications.amount"), "{sql}");
        assert!(sql.contains("EXTRACT(DAY FROM apply_date)"), "{sql}");
        assert!(sql.contains("COUNT(DISTINCT imei)"), "{sql}");
        assert!(!sql.to_lowercase().contains("date_diff"), "{sql}");
        let bad = analyze("SELECT DATE_TRUNC('fortnight', d) FROM t").unwrap();
        assert!(rewrite(&bad, &HashMap::new(), &Clock::system())
            .unwrap_err()
            .message
            .contains("fortnight"));
    }

    /// Projection pushdown stays on for warehouse tables listed with commas (an equi-join in
    /// WHERE: turning it off read every column, 4× slower) and goes off only when a subquery
    /// or a CTE is joined without a condition.
    #[test]
    fn cross_joins_at_risk() {
        let risky = |sql: &str| {
            let a = analyze(sql).unwrap();
            has_cross_join(&a.statement, &a.tables.iter().map(|t| t.pos).collect())
        };
        assert!(!risky("SELECT 1 FROM clean.t a, clean.e b WHERE a.k = b.k"));
        assert!(!risky(
            "SELECT 1 FROM clean.t a JOIN clean.e b ON a.k = b.k"
        ));
        assert!(risky(
            "SELECT a.k FROM clean.t a CROSS JOIN (SELECT sum(x) AS s FROM clean.t) c"
        ));
        assert!(risky(
            "WITH c AS (SELECT sum(x) AS s FROM clean.t) SELECT a.k FROM clean.t a, c"
        ));
        assert!(!risky("SELECT k FROM (SELECT k FROM clean.t) s"));
    }
}

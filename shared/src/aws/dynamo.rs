//! The tenant registry and the cursor store on DynamoDB.
//!
//! Tables (names from the configuration, keys fixed by the infrastructure contract):
//! - registry: partition key `tenant_id` (S). One item per tenant with the attributes
//!   `cloud`, `cloud_group`, `app_ref`, `streams` (L of S), `include_noninteractive`,
//!   `enabled`, `domain`, `org`, `created_at`, `health` (S, JSON of [`Health`]),
//!   `health_state` (S, for operators' queries) and `rev` (N, bumped by every write).
//!   Beside them, guard items that make domains and organizations unique (below).
//! - cursors: partition key `tenant_id` (S), sort key `stream` (S), attributes `doc` (S, the
//!   cursor JSON) and `version` (N). The identity inventory keeps its per-object items in the
//!   same table under sort keys cursors never use (`inv#...`, `invsum#...`, `usage#...`; see
//!   `dynamo/inventory.rs`).
//!
//! Compare-and-set: a cursor commit is one `PutItem` whose `ConditionExpression` requires the
//! stored version to equal the expected one (`attribute_not_exists` for the first commit). A
//! failed condition is [`StoreError::Conflict`]; nothing is overwritten. Health updates are a
//! read, [`apply_health`], and a write conditioned on `rev`, retried a few times on a lost
//! race, so concurrent updates are never lost either.
//!
//! Uniqueness of domains and organizations (the [`TenantRegistry`] contract, as the embedded
//! store enforces it): DynamoDB has no unique secondary keys, so the registry table also holds
//! one guard item per value in use, keyed `DOMAIN#<domain_key>` or `ORG#<org_key>`, with the
//! attribute `owner` (the tenant id). Tenant ids are stored lowercase, so these uppercase
//! prefixes never meet a tenant's key. Every registry write that changes them is one
//! `TransactWriteItems`: the tenant item (conditioned on its absence for an insert, on `rev`
//! otherwise), a `Put` of each guard the record needs (conditioned on the guard being absent
//! or already the tenant's own) and a `Delete` of each guard it gives up (conditioned on
//! being the tenant's). Either all of it happens or none; a guard held by another tenant
//! cancels the transaction and the write is refused. Health updates touch only the tenant
//! item. Scans ([`DynamoRegistry::scan_page`], `list`) skip guard items, so the scheduler sees
//! tenants only.
//!
//! Guards written before this scheme, or left by hand edits, are handled so that existing
//! registries keep working: items without `rev` or guards are read as before; the first
//! insert or update through a [`DynamoRegistry`] value creates the missing guards of every
//! tenant once ([`DynamoRegistry::backfill_guards`], recorded by a `META#guards` item); and a
//! guard whose owner no longer holds the value (deleted out of band) is removed, in a
//! transaction that checks the owner is unchanged, before the write is retried.
//!
//! Reads are strongly consistent.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update,
};
use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::OnceCell;

use super::describe;
use crate::cloud::Cloud;
use crate::store::{
    CursorStore, Health, HealthUpdate, StoreError, StoredCursor, TenantRecord, TenantRegistry,
    apply_health, domain_key, org_key,
};
use crate::stream::Stream;

mod actions;
pub mod digest;
mod inventory;
mod pages;
pub mod report_state;
// The actions functions' request ids, and the registry's look-up of a tenant by domain.
mod requests;
pub use requests::RequestClaim;

type Item = HashMap<String, AttributeValue>;

/// How often a health update retries after losing a race on `rev`.
const HEALTH_UPDATE_ATTEMPTS: u32 = 8;

/// How often an insert, update or delete retries after losing a race (a changed `rev`, a
/// stale guard removed, a transaction conflict).
const WRITE_ATTEMPTS: u32 = 8;

/// Key prefix of a domain's guard item.
const DOMAIN_GUARD: &str = "DOMAIN#";
/// Key prefix of an organization's guard item.
const ORG_GUARD: &str = "ORG#";
/// Key prefix of the registry's bookkeeping items.
const META: &str = "META#";
/// The item recording that every tenant's guards exist.
const GUARDS_MARKER: &str = "META#guards";
/// The guard scheme [`GUARDS_MARKER`] records.
const GUARDS_VERSION: &str = "1";

/// Whether a registry key is a guard or bookkeeping item rather than a tenant. Tenant ids are
/// stored lowercase, so no tenant's key starts with these uppercase prefixes.
pub fn is_reserved_key(key: &str) -> bool {
    [DOMAIN_GUARD, ORG_GUARD, META]
        .iter()
        .any(|p| key.starts_with(p))
}

/// A value that at most one tenant may hold, by its uniqueness key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Guard {
    Domain(String),
    Org(String),
}

impl Guard {
    /// The guards a record needs.
    fn of(record: &TenantRecord) -> Vec<Guard> {
        let domain = record
            .domain
            .as_deref()
            .map(|d| Guard::Domain(domain_key(d)));
        let org = record.org.as_deref().map(|o| Guard::Org(org_key(o)));
        domain.into_iter().chain(org).collect()
    }

    /// The guard item's key.
    fn key(&self) -> String {
        match self {
            Guard::Domain(d) => format!("{DOMAIN_GUARD}{d}"),
            Guard::Org(o) => format!("{ORG_GUARD}{o}"),
        }
    }

    /// The field it guards, for messages.
    fn field(&self) -> &'static str {
        match self {
            Guard::Domain(_) => "domain",
            Guard::Org(_) => "organization",
        }
    }

    /// Whether `record` holds the guarded value.
    fn held_by(&self, record: &TenantRecord) -> bool {
        Guard::of(record).contains(self)
    }

    /// The refusal when `holder` has the value `tenant` asked for (names ids, not the value).
    fn taken(&self, tenant: &str, holder: &str) -> StoreError {
        match self {
            Guard::Domain(_) => StoreError::Invalid(format!(
                "domain of tenant {tenant} is already registered to tenant {holder}"
            )),
            Guard::Org(_) => StoreError::Invalid(format!(
                "organization of tenant {tenant} is already mapped to tenant {holder}"
            )),
        }
    }
}

/// The conditions on a tenant item read at `rev` (0: an item written before `rev` existed).
fn rev_condition(rev: u64) -> (&'static str, Option<AttributeValue>) {
    if rev == 0 {
        (
            "attribute_exists(tenant_id) AND attribute_not_exists(rev)",
            None,
        )
    } else {
        (
            "attribute_exists(tenant_id) AND rev = :rev",
            Some(AttributeValue::N(rev.to_string())),
        )
    }
}

fn built<T>(r: Result<T, BuildError>) -> Result<T, StoreError> {
    r.map_err(|_| {
        StoreError::Backend("registry TransactWriteItems: request could not be built".into())
    })
}

/// A transaction DynamoDB cancelled: for each action in order, whether its condition failed
/// and the item it found (returned with `ALL_OLD`).
struct Cancelled {
    reasons: Vec<(bool, Option<Item>)>,
}

impl Cancelled {
    fn failed(&self, action: usize) -> bool {
        self.reasons.get(action).is_some_and(|(failed, _)| *failed)
    }

    fn item(&self, action: usize) -> Option<&Item> {
        self.reasons.get(action).and_then(|(_, item)| item.as_ref())
    }
}

/// Cancellation reasons worth retrying the whole transaction for.
const RETRYABLE_CANCELLATIONS: [&str; 3] = [
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// The error when a registry write kept losing races.
fn gave_up(op: &str, tenant_id: &str) -> StoreError {
    StoreError::Backend(format!(
        "registry {op} of tenant {tenant_id} kept changing concurrently; gave up after {WRITE_ATTEMPTS} attempts"
    ))
}

fn backend<E, R>(op: &str, e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError::Backend(describe(op, e))
}

fn is_condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    super::error_code(e) == Some("ConditionalCheckFailedException")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, StoreError> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} is missing or not a string"
        ))),
    }
}

fn get_opt_s(item: &Item, key: &str) -> Option<String> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_bool(item: &Item, key: &str) -> Result<bool, StoreError> {
    match item.get(key) {
        Some(AttributeValue::Bool(b)) => Ok(*b),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} is missing or not a boolean"
        ))),
    }
}

fn get_u64(item: &Item, key: &str) -> Result<u64, StoreError> {
    match item.get(key) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {key} is not a whole number"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} is missing or not a number"
        ))),
    }
}

/// The tenant registry on DynamoDB. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
    /// Set once this value has made sure every tenant's guards exist.
    guards_ready: Arc<OnceCell<()>>,
}

/// What [`DynamoRegistry::backfill_guards`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GuardBackfill {
    /// The registry had been backfilled before: nothing was scanned.
    pub already_done: bool,
    /// Tenants scanned.
    pub tenants: usize,
    /// Tenants sharing a domain or organization with an earlier one (by tenant id), as
    /// `(tenant, field, holder)`: registered before uniqueness was enforced. They stay
    /// readable and polled; an update keeping the shared value is refused until an operator
    /// changes it (`itdr tenants remap`).
    pub duplicates: Vec<(String, &'static str, String)>,
}

/// One page of a registry scan.
#[derive(Debug, Default)]
pub struct RegistryPage {
    /// The tenants decoded from the page.
    pub tenants: Vec<TenantRecord>,
    /// Items that could not be decoded (logged, skipped).
    pub corrupt: usize,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<Item>,
}

impl DynamoRegistry {
    /// A registry in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            guards_ready: Arc::new(OnceCell::new()),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The item `record` is stored as, at revision 1, without the uniqueness guards (domain,
    /// organization) that [`TenantRegistry::insert`] claims beside it: for a bulk load of
    /// records already known to be unique (the fan-out bench seeds moto with it, whose
    /// transactions copy the whole table each). Onboarding goes through `insert`.
    pub fn item_of(record: &TenantRecord) -> Result<Item, StoreError> {
        record.validate()?;
        let mut item = Self::encode(record)?;
        item.insert("rev".into(), AttributeValue::N("1".into()));
        Ok(item)
    }

    /// Encodes a record as an item (without `rev`).
    fn encode(record: &TenantRecord) -> Result<Item, StoreError> {
        let health = serde_json::to_string(&record.health)
            .map_err(|_| StoreError::Invalid("health could not be encoded".into()))?;
        let mut item = Item::new();
        item.insert("tenant_id".into(), s(record.tenant_id.to_ascii_lowercase()));
        item.insert("cloud".into(), s(record.cloud.as_str()));
        item.insert("cloud_group".into(), s(record.cloud.group().as_str()));
        item.insert("app_ref".into(), s(record.app_ref.clone()));
        item.insert(
            "streams".into(),
            AttributeValue::L(record.streams.iter().map(|st| s(st.as_str())).collect()),
        );
        item.insert(
            "include_noninteractive".into(),
            AttributeValue::Bool(record.include_noninteractive),
        );
        item.insert("enabled".into(), AttributeValue::Bool(record.enabled));
        if let Some(d) = &record.domain {
            item.insert("domain".into(), s(d.to_ascii_lowercase()));
        }
        if let Some(o) = &record.org {
            item.insert("org".into(), s(o.clone()));
        }
        // Full precision, so that a record reads back as it was written.
        item.insert(
            "created_at".into(),
            s(record
                .created_at
                .to_rfc3339_opts(SecondsFormat::AutoSi, true)),
        );
        item.insert("health".into(), s(health));
        item.insert("health_state".into(), s(record.health.state.as_str()));
        Ok(item)
    }

    /// Decodes an item; the error names the attribute, never its value.
    fn decode(item: &Item) -> Result<(TenantRecord, u64), StoreError> {
        let tenant_id = get_s(item, "tenant_id")?.to_string();
        let cloud: Cloud = get_s(item, "cloud")?
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: unknown cloud")))?;
        let streams = match item.get("streams") {
            Some(AttributeValue::L(l)) => l
                .iter()
                .map(|v| match v {
                    AttributeValue::S(x) => x.parse::<Stream>().map_err(|_| {
                        StoreError::Corrupt(format!("tenant {tenant_id}: unknown stream"))
                    }),
                    _ => Err(StoreError::Corrupt(format!(
                        "tenant {tenant_id}: streams holds a non-string"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "tenant {tenant_id}: streams is missing or not a list"
                )));
            }
        };
        let health: Health = serde_json::from_str(get_s(item, "health")?)
            .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: unreadable health")))?;
        let created_at = DateTime::parse_from_rfc3339(get_s(item, "created_at")?)
            .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: unreadable created_at")))?
            .with_timezone(&Utc);
        let rev = match item.get("rev") {
            Some(_) => get_u64(item, "rev")?,
            None => 0,
        };
        Ok((
            TenantRecord {
                tenant_id,
                domain: get_opt_s(item, "domain"),
                org: get_opt_s(item, "org"),
                cloud,
                app_ref: get_s(item, "app_ref")?.to_string(),
                streams,
                include_noninteractive: get_bool(item, "include_noninteractive")?,
                enabled: get_bool(item, "enabled")?,
                health,
                created_at,
            },
            rev,
        ))
    }

    /// Reads one page of the registry (at most `limit` items, guard items included, so a page
    /// may hold fewer tenants), starting after `start`. Guard and bookkeeping items are
    /// skipped; undecodable tenant items are logged by tenant id and counted, not returned.
    pub async fn scan_page(
        &self,
        start: Option<Item>,
        limit: i32,
    ) -> Result<RegistryPage, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(limit.max(1))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| backend("registry Scan", &e))?;
        let mut page = RegistryPage {
            next: out.last_evaluated_key().cloned().filter(|k| !k.is_empty()),
            ..RegistryPage::default()
        };
        for item in out.items() {
            if matches!(item.get("tenant_id"), Some(AttributeValue::S(k)) if is_reserved_key(k)) {
                continue;
            }
            match Self::decode(item) {
                Ok((r, _)) => page.tenants.push(r),
                Err(e) => {
                    page.corrupt += 1;
                    tracing::error!(error = %e, "registry item could not be decoded; skipped");
                }
            }
        }
        Ok(page)
    }

    async fn get_with_rev(
        &self,
        tenant_id: &str,
    ) -> Result<Option<(TenantRecord, u64)>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("registry GetItem", &e))?;
        out.item().map(Self::decode).transpose()
    }

    /// One item by key, as stored.
    async fn get_raw(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("registry GetItem", &e))?;
        Ok(out.item().cloned())
    }

    /// Runs a transaction: `None` once applied, or what cancelled it. A cancellation for a
    /// reason other than a failed condition or a retryable conflict is an error.
    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
    ) -> Result<Option<Cancelled>, StoreError> {
        const OP: &str = "registry TransactWriteItems";
        let e = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await
        {
            Ok(_) => return Ok(None),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error()
        else {
            return Err(backend(OP, &e));
        };
        let mut reasons = Vec::new();
        for r in c.cancellation_reasons() {
            match r.code() {
                None | Some("None") => reasons.push((false, None)),
                Some("ConditionalCheckFailed") => reasons.push((true, r.item().cloned())),
                Some(code) if RETRYABLE_CANCELLATIONS.contains(&code) => {
                    reasons.push((false, None));
                }
                Some(code) => {
                    return Err(StoreError::Backend(format!("{OP}: cancelled ({code})")));
                }
            }
        }
        Ok(Some(Cancelled { reasons }))
    }

    /// The action taking `guard` for `owner` (lowercase tenant id): its guard item must be
    /// absent or already the owner's.
    fn claim(&self, guard: &Guard, owner: &str) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("tenant_id", s(guard.key()))
            .item("owner", s(owner))
            .condition_expression("attribute_not_exists(tenant_id) OR #owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build();
        Ok(TransactWriteItem::builder().put(built(put)?).build())
    }

    /// The action giving `guard` up: its item is deleted if it is `owner`'s (an absent one
    /// is fine; another tenant's fails the condition and is left alone).
    fn release(&self, guard: &Guard, owner: &str) -> Result<TransactWriteItem, StoreError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("tenant_id", s(guard.key()))
            .condition_expression("attribute_not_exists(tenant_id) OR #owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner))
            .build();
        Ok(TransactWriteItem::builder().delete(built(delete)?).build())
    }

    /// The action replacing a tenant item read at `rev` with `record`.
    fn replace(&self, record: &TenantRecord, rev: u64) -> Result<TransactWriteItem, StoreError> {
        let item = Self::encode(record)?;
        let mut update = Update::builder()
            .table_name(&self.table)
            .key("tenant_id", s(record.tenant_id.to_ascii_lowercase()));
        let mut sets = Vec::new();
        for (i, (k, v)) in item
            .into_iter()
            .filter(|(k, _)| k != "tenant_id")
            .enumerate()
        {
            update = update
                .expression_attribute_names(format!("#a{i}"), k)
                .expression_attribute_values(format!(":v{i}"), v);
            sets.push(format!("#a{i} = :v{i}"));
        }
        let mut remove = Vec::new();
        for (i, (attr, present)) in [
            ("domain", record.domain.is_some()),
            ("org", record.org.is_some()),
        ]
        .into_iter()
        .enumerate()
        {
            if !present {
                update = update.expression_attribute_names(format!("#r{i}"), attr);
                remove.push(format!("#r{i}"));
            }
        }
        let mut expr = format!("SET {}, rev = :next", sets.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let next = rev
            .checked_add(1)
            .ok_or_else(|| StoreError::Corrupt(format!("tenant {}: rev", record.tenant_id)))?;
        let (cond, value) = rev_condition(rev);
        update = update
            .update_expression(expr)
            .condition_expression(cond)
            .expression_attribute_values(":next", AttributeValue::N(next.to_string()));
        if let Some(v) = value {
            update = update.expression_attribute_values(":rev", v);
        }
        Ok(TransactWriteItem::builder()
            .update(built(update.build())?)
            .build())
    }

    /// Who holds `guard`, after a claim on it failed (`found`: the guard item the failure
    /// returned). `Some(tenant)` if that tenant really holds the value. `None` if the claim
    /// may be retried: the guard is gone, is `me`'s, or was stale (its owner is gone or holds
    /// another value now) and has been removed, in a transaction that checks the owner has
    /// not changed since it was read.
    async fn holder(
        &self,
        guard: &Guard,
        found: Option<&Item>,
        me: &str,
    ) -> Result<Option<String>, StoreError> {
        let item = match found {
            Some(item) => Some(item.clone()),
            None => self.get_raw(&guard.key()).await?,
        };
        let Some(item) = item else {
            return Ok(None);
        };
        let owner = get_s(&item, "owner")
            .map_err(|_| StoreError::Corrupt(format!("{} guard: owner", guard.field())))?
            .to_string();
        if owner == me {
            return Ok(None);
        }
        let current = self.get_with_rev(&owner).await?;
        if current.as_ref().is_some_and(|(r, _)| guard.held_by(r)) {
            return Ok(Some(owner));
        }
        let mut check = ConditionCheck::builder()
            .table_name(&self.table)
            .key("tenant_id", s(owner.clone()));
        check = match current {
            None => check.condition_expression("attribute_not_exists(tenant_id)"),
            Some((_, rev)) => {
                let (cond, value) = rev_condition(rev);
                let check = check.condition_expression(cond);
                match value {
                    Some(v) => check.expression_attribute_values(":rev", v),
                    None => check,
                }
            }
        };
        let delete = Delete::builder()
            .table_name(&self.table)
            .key("tenant_id", s(guard.key()))
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", s(owner.clone()))
            .build();
        let actions = vec![
            TransactWriteItem::builder()
                .condition_check(built(check.build())?)
                .build(),
            TransactWriteItem::builder().delete(built(delete)?).build(),
        ];
        if self.transact(actions).await?.is_none() {
            tracing::warn!(
                field = guard.field(),
                stale_owner = %owner,
                "registry guard of a tenant that no longer holds its value was removed"
            );
        }
        Ok(None)
    }

    /// Takes `guard` for tenant `me` alone; returns the tenant holding it instead, if any.
    async fn claim_alone(&self, guard: &Guard, me: &str) -> Result<Option<String>, StoreError> {
        for _ in 0..WRITE_ATTEMPTS {
            let Some(c) = self.transact(vec![self.claim(guard, me)?]).await? else {
                return Ok(None);
            };
            if c.failed(0)
                && let Some(holder) = self.holder(guard, c.item(0), me).await?
            {
                return Ok(Some(holder));
            }
        }
        Err(gave_up("guard backfill", me))
    }

    /// Creates the guard items of every tenant that lacks them (registries written before
    /// guards existed), then records that in a `META#guards` item; does nothing if that item
    /// exists. Idempotent and safe to run concurrently. Tenants sharing a value with an
    /// earlier one (by tenant id) are reported and logged, not changed.
    ///
    /// Inserts and updates run it once per [`DynamoRegistry`] value before their first
    /// write; operators may run it ahead of time.
    pub async fn backfill_guards(&self) -> Result<GuardBackfill, StoreError> {
        if self.get_raw(GUARDS_MARKER).await?.is_some() {
            return Ok(GuardBackfill {
                already_done: true,
                ..GuardBackfill::default()
            });
        }
        let tenants = self.list().await?;
        let mut report = GuardBackfill {
            tenants: tenants.len(),
            ..GuardBackfill::default()
        };
        for t in &tenants {
            let id = t.tenant_id.to_ascii_lowercase();
            for guard in Guard::of(t) {
                if let Some(holder) = self.claim_alone(&guard, &id).await? {
                    tracing::warn!(
                        tenant = %id,
                        field = guard.field(),
                        holder = %holder,
                        "tenant shares a value that must be unique with another tenant; change it"
                    );
                    report.duplicates.push((id.clone(), guard.field(), holder));
                }
            }
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(GUARDS_MARKER))
            .item("guards_version", AttributeValue::N(GUARDS_VERSION.into()))
            .item(
                "backfilled_at",
                s(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
            )
            .send()
            .await
            .map_err(|e| backend("registry PutItem", &e))?;
        Ok(report)
    }

    /// Runs [`Self::backfill_guards`] once for this value.
    async fn ensure_guards(&self) -> Result<(), StoreError> {
        self.guards_ready
            .get_or_try_init(|| async { self.backfill_guards().await.map(|_| ()) })
            .await
            .map(|_| ())
    }
}

#[async_trait]
impl TenantRegistry for DynamoRegistry {
    async fn list(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = self.scan_page(start, 100).await?;
            all.extend(page.tenants);
            match page.next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        all.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        Ok(all)
    }

    async fn get(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(self.get_with_rev(tenant_id).await?.map(|(r, _)| r))
    }

    async fn insert(&self, record: &TenantRecord) -> Result<(), StoreError> {
        let item = Self::item_of(record)?;
        self.ensure_guards().await?;
        let id = record.tenant_id.to_ascii_lowercase();
        let guards = Guard::of(record);
        for _ in 0..WRITE_ATTEMPTS {
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item.clone()))
                .condition_expression("attribute_not_exists(tenant_id)")
                .build();
            let mut actions = vec![TransactWriteItem::builder().put(built(put)?).build()];
            for g in &guards {
                actions.push(self.claim(g, &id)?);
            }
            let Some(c) = self.transact(actions).await? else {
                return Ok(());
            };
            if c.failed(0) {
                return Err(StoreError::Invalid(format!(
                    "tenant id {} is already registered",
                    record.tenant_id
                )));
            }
            for (i, g) in guards.iter().enumerate() {
                if c.failed(1 + i)
                    && let Some(holder) = self.holder(g, c.item(1 + i), &id).await?
                {
                    return Err(g.taken(&record.tenant_id, &holder));
                }
            }
        }
        Err(gave_up("insert", &record.tenant_id))
    }

    async fn update(&self, record: &TenantRecord) -> Result<(), StoreError> {
        record.validate()?;
        self.ensure_guards().await?;
        let id = record.tenant_id.to_ascii_lowercase();
        let wanted = Guard::of(record);
        // Guards of the old values that another tenant holds (duplicates from before
        // guards): never released.
        let mut foreign: Vec<Guard> = Vec::new();
        for _ in 0..WRITE_ATTEMPTS {
            let Some((current, rev)) = self.get_with_rev(&id).await? else {
                return Err(StoreError::UnknownTenant(record.tenant_id.clone()));
            };
            let released: Vec<Guard> = Guard::of(&current)
                .into_iter()
                .filter(|g| !wanted.contains(g) && !foreign.contains(g))
                .collect();
            let mut actions = vec![self.replace(record, rev)?];
            for g in &wanted {
                actions.push(self.claim(g, &id)?);
            }
            for g in &released {
                actions.push(self.release(g, &id)?);
            }
            let Some(c) = self.transact(actions).await? else {
                return Ok(());
            };
            if c.failed(0) {
                // The tenant changed (or went) since it was read: read it again.
                continue;
            }
            for (i, g) in wanted.iter().enumerate() {
                if c.failed(1 + i)
                    && let Some(holder) = self.holder(g, c.item(1 + i), &id).await?
                {
                    return Err(g.taken(&record.tenant_id, &holder));
                }
            }
            for (i, g) in released.iter().enumerate() {
                if c.failed(1 + wanted.len() + i) {
                    foreign.push(g.clone());
                }
            }
        }
        Err(gave_up("update", &record.tenant_id))
    }

    async fn update_health(
        &self,
        tenant_id: &str,
        update: &HealthUpdate,
    ) -> Result<Health, StoreError> {
        for _ in 0..HEALTH_UPDATE_ATTEMPTS {
            let Some((record, rev)) = self.get_with_rev(tenant_id).await? else {
                return Err(StoreError::UnknownTenant(tenant_id.to_string()));
            };
            let health = apply_health(&record.health, update);
            let doc = serde_json::to_string(&health)
                .map_err(|_| StoreError::Invalid("health could not be encoded".into()))?;
            let cond = if rev == 0 {
                "attribute_not_exists(rev)"
            } else {
                "rev = :rev"
            };
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
                .update_expression("SET health = :h, health_state = :st, rev = :next")
                .condition_expression(format!("attribute_exists(tenant_id) AND {cond}"))
                .expression_attribute_values(":h", s(doc))
                .expression_attribute_values(":st", s(health.state.as_str()))
                .expression_attribute_values(":next", AttributeValue::N((rev + 1).to_string()));
            if rev != 0 {
                req = req.expression_attribute_values(":rev", AttributeValue::N(rev.to_string()));
            }
            match req.send().await {
                Ok(_) => return Ok(health),
                Err(e) if is_condition_failed(&e) => {
                    tracing::debug!(tenant = %tenant_id, "health update lost a race; re-reading");
                    continue;
                }
                Err(e) => return Err(backend("registry UpdateItem", &e)),
            }
        }
        Err(StoreError::Backend(format!(
            "health of tenant {tenant_id} kept changing concurrently; gave up after {HEALTH_UPDATE_ATTEMPTS} attempts"
        )))
    }

    async fn set_contact(&self, tenant_id: &str, contact: Option<&str>) -> Result<(), StoreError> {
        DynamoRegistry::set_contact(self, tenant_id, contact).await
    }

    async fn delete(&self, tenant_id: &str) -> Result<(), StoreError> {
        let id = tenant_id.to_ascii_lowercase();
        let mut foreign: Vec<Guard> = Vec::new();
        for _ in 0..WRITE_ATTEMPTS {
            let Some((current, rev)) = self.get_with_rev(&id).await? else {
                return Err(StoreError::UnknownTenant(tenant_id.to_string()));
            };
            let released: Vec<Guard> = Guard::of(&current)
                .into_iter()
                .filter(|g| !foreign.contains(g))
                .collect();
            let (cond, value) = rev_condition(rev);
            let mut delete = Delete::builder()
                .table_name(&self.table)
                .key("tenant_id", s(id.clone()))
                .condition_expression(cond);
            if let Some(v) = value {
                delete = delete.expression_attribute_values(":rev", v);
            }
            let mut actions = vec![
                TransactWriteItem::builder()
                    .delete(built(delete.build())?)
                    .build(),
            ];
            for g in &released {
                actions.push(self.release(g, &id)?);
            }
            let Some(c) = self.transact(actions).await? else {
                return Ok(());
            };
            if c.failed(0) {
                continue;
            }
            for (i, g) in released.iter().enumerate() {
                if c.failed(1 + i) {
                    foreign.push(g.clone());
                }
            }
        }
        Err(gave_up("delete", tenant_id))
    }
}

/// The cursor store on DynamoDB. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoCursorStore {
    client: Client,
    table: String,
}

impl DynamoCursorStore {
    /// A cursor store in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl CursorStore for DynamoCursorStore {
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant.to_ascii_lowercase()))
            .key("stream", s(stream.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("cursor GetItem", &e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let doc = serde_json::from_str(get_s(item, "doc")?).map_err(|_| {
            StoreError::Corrupt(format!("cursor {tenant}/{stream}: doc is not JSON"))
        })?;
        let version = get_u64(item, "version")?;
        Ok(Some(StoredCursor { doc, version }))
    }

    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        // `expected` = u64::MAX cannot be followed by a version: the compare-and-set is lost
        // (as in the SQLite store), never an error of another kind.
        let Some(next) = expected.unwrap_or(0).checked_add(1) else {
            return Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                stream,
                expected,
            });
        };
        let body = serde_json::to_string(doc)
            .map_err(|_| StoreError::Invalid("cursor could not be encoded".into()))?;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(tenant.to_ascii_lowercase()))
            .item("stream", s(stream.as_str()))
            .item("doc", s(body))
            .item("version", AttributeValue::N(next.to_string()))
            .item(
                "updated_at",
                s(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
            );
        req = match expected {
            None => req.condition_expression("attribute_not_exists(tenant_id)"),
            Some(v) => req
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(next),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                stream,
                expected,
            }),
            Err(e) => Err(backend("cursor PutItem", &e)),
        }
    }

    async fn purge(&self, tenant: &str) -> Result<(), StoreError> {
        crate::inventory::InventoryStore::purge_inventory(self, tenant).await?;
        self.purge_pages(tenant).await?;
        self.purge_digests(tenant).await?;
        for stream in Stream::EVERY {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("tenant_id", s(tenant.to_ascii_lowercase()))
                .key("stream", s(stream.as_str()))
                .send()
                .await
                .map_err(|e| backend("cursor DeleteItem", &e))?;
        }
        Ok(())
    }

    fn inventory(&self) -> Option<&dyn crate::inventory::InventoryStore> {
        Some(self)
    }

    fn seen_pages(&self) -> Option<&dyn crate::cursor::SeenPages> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HealthState;

    #[test]
    fn records_round_trip_through_items() {
        let r = TenantRecord {
            tenant_id: "abc".into(),
            domain: Some("Contoso.onmicrosoft.com".into()),
            org: None,
            cloud: Cloud::GccHigh,
            app_ref: "default".into(),
            streams: Stream::ALL.to_vec(),
            include_noninteractive: true,
            enabled: true,
            health: Health {
                state: HealthState::Degraded,
                consecutive_failures: 2,
                ..Health::default()
            },
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default(),
        };
        let item = DynamoRegistry::encode(&r).unwrap_or_default();
        assert!(matches!(item.get("cloud_group"), Some(AttributeValue::S(g)) if g == "usgov"));
        let (back, rev) = DynamoRegistry::decode(&item)
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rev, 0);
        assert_eq!(back.domain.as_deref(), Some("contoso.onmicrosoft.com"));
        assert_eq!(back.health, r.health);
        assert_eq!(back.streams, r.streams);
        assert_eq!(back.created_at, r.created_at);
    }
}

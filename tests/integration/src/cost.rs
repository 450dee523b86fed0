//! The AWS cost model of `docs/COST.md`: USD per month for a fleet of tenants, from counts the
//! benches measure (the fleet simulation's `fleet.1000.*` figures when they exist) and named
//! assumptions otherwise. Every input is a field of [`Inputs`]; every unit price a field of
//! [`Prices`] (us-east-1 public list prices, arm64 Lambda, no free tier, as of the date in
//! `docs/COST.md`). [`Breakdown::of`] is the formula the document states.

use std::fmt::Write as _;

use crate::bench_results::Merged;

/// The figure the model adds to the results.
pub const COST_FIGURE: &str = "cost.usd_per_1000_tenants_month";

/// Days in an average month (365.25 / 12).
pub const DAYS_PER_MONTH: f64 = 30.4375;

/// us-east-1 list prices (USD).
#[derive(Debug, Clone, Copy)]
pub struct Prices {
    /// Lambda arm64, per GB-second.
    pub lambda_gb_s: f64,
    /// Lambda, per request.
    pub lambda_request: f64,
    /// SQS FIFO, per request (each 64 KB chunk of a payload is one request).
    pub sqs_fifo_request: f64,
    /// SQS standard, per request.
    pub sqs_standard_request: f64,
    /// DynamoDB on-demand, per write request unit.
    pub ddb_wru: f64,
    /// DynamoDB on-demand, per read request unit.
    pub ddb_rru: f64,
    /// DynamoDB standard table class, per GB-month stored.
    pub ddb_gb_month: f64,
    /// Secrets Manager, per secret-month.
    pub secret_month: f64,
    /// Secrets Manager, per API call.
    pub secret_call: f64,
    /// CloudWatch Logs ingestion, per GB.
    pub logs_gb: f64,
    /// CloudWatch Logs storage, per GB-month.
    pub logs_gb_month: f64,
    /// CloudWatch custom metric (EMF), per metric-month (first 10,000 tier).
    pub metric_month: f64,
    /// CloudWatch standard-resolution alarm, per alarm-month.
    pub alarm_month: f64,
    /// CloudWatch dashboard, per dashboard-month (beyond the three free ones).
    pub dashboard_month: f64,
}

/// us-east-1 list prices used by `docs/COST.md`.
pub const US_EAST_1: Prices = Prices {
    lambda_gb_s: 0.000_013_333_4,
    lambda_request: 0.20 / 1e6,
    sqs_fifo_request: 0.50 / 1e6,
    sqs_standard_request: 0.40 / 1e6,
    ddb_wru: 0.625 / 1e6,
    ddb_rru: 0.125 / 1e6,
    ddb_gb_month: 0.25,
    secret_month: 0.40,
    secret_call: 0.05 / 10_000.0,
    logs_gb: 0.50,
    logs_gb_month: 0.03,
    metric_month: 0.30,
    alarm_month: 0.10,
    dashboard_month: 3.00,
};

/// Every input of the model. The doc names each one; [`Inputs::from_figures`] says where each
/// came from.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Tenants (T).
    pub tenants: f64,
    /// Poller jobs per tenant per day (J): `fleet.N.jobs_per_tenant_day`.
    pub jobs_per_tenant_day: f64,
    /// Events delivered per tenant per day (E): `fleet.N.events_per_tenant_day`.
    pub events_per_tenant_day: f64,
    /// Microsoft requests per tenant per hour (Q): `fleet.N.requests_per_tenant_hour`.
    pub requests_per_tenant_hour: f64,
    /// Poller CPU seconds per tenant per day (C): `fleet.N.cpu_s_per_tenant_day`.
    pub cpu_s_per_tenant_day: f64,
    /// App registrations (A): `fleet.N.apps` (one secret each).
    pub apps: f64,
    /// Scheduler wall seconds per slot for these tenants (S): `fanout.10000.wall_s` x T / 10,000.
    pub scheduler_s_per_slot: f64,
    /// Wall seconds a poller waits per Microsoft request (L, assumption).
    pub latency_s_per_request: f64,
    /// Wall seconds per job for the SQS and DynamoDB calls (O, assumption).
    pub aws_overhead_s_per_job: f64,
    /// Poller memory (MB, the template's PollerMemoryMB).
    pub poller_memory_mb: f64,
    /// Scheduler memory (MB, SchedulerMemoryMB).
    pub scheduler_memory_mb: f64,
    /// Jobs per poller invocation (B, PollerBatchSize; at most this many).
    pub jobs_per_invocation: f64,
    /// Schedule slot seconds (the template's 5-minute default).
    pub slot_s: f64,
    /// Bytes of one event on the events queue (inside its envelope).
    pub event_bytes: f64,
    /// DynamoDB write units per job (cursor, health, seen page).
    pub wru_per_job: f64,
    /// DynamoDB read units per job (registry, cursor).
    pub rru_per_job: f64,
    /// Stored bytes per tenant (registry item, cursors, seen pages, digest days).
    pub stored_bytes_per_tenant: f64,
    /// Registry item bytes (the scheduler scans every item every slot).
    pub registry_item_bytes: f64,
    /// Warm poller containers (PollerMaxConcurrency).
    pub poller_containers: f64,
    /// Secret cache lifetime per warm container (SecretTtlSeconds).
    pub secret_ttl_s: f64,
    /// Log bytes per job (the "job polled" line and its EMF document).
    pub log_bytes_per_job: f64,
    /// Log retention in months (storage of one month's logs, summed over the retention).
    pub log_months_kept: f64,
    /// EMF metric series (metric x dimension values).
    pub metrics: f64,
    /// CloudWatch alarms of one stack.
    pub alarms: f64,
    /// Dashboards.
    pub dashboards: f64,
}

/// Where the fleet counts came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The fleet simulation's figures for this many tenants.
    Fleet(u32),
    /// No fleet figures: the schedule and the issue's mix (not measured by `make bench`).
    Assumed,
}

impl Inputs {
    /// The template's defaults and the model's assumptions, for `tenants`, with the fleet
    /// counts of issue 14's own measurement (`itdr run`, 1,000 tenants of the small-business
    /// mix): every log stream every slot, about 30 requests per tenant-hour, the mix's 114
    /// sign-ins per hour.
    pub fn assumed(tenants: f64) -> Self {
        Inputs {
            tenants,
            jobs_per_tenant_day: 3.0 * 288.0,
            events_per_tenant_day: 24.0 * (0.6 * 20.0 + 0.3 * 100.0 + 0.08 * 400.0 + 0.02 * 2000.0),
            requests_per_tenant_hour: 30.0,
            cpu_s_per_tenant_day: 0.0,
            apps: 1.0,
            scheduler_s_per_slot: 1.0,
            latency_s_per_request: 0.25,
            aws_overhead_s_per_job: 0.05,
            poller_memory_mb: 256.0,
            scheduler_memory_mb: 1024.0,
            jobs_per_invocation: 5.0,
            slot_s: 300.0,
            event_bytes: 2_000.0,
            wru_per_job: 3.0,
            rru_per_job: 2.0,
            stored_bytes_per_tenant: 64_000.0,
            registry_item_bytes: 1_000.0,
            poller_containers: 5.0,
            secret_ttl_s: 900.0,
            log_bytes_per_job: 1_500.0,
            log_months_kept: 12.0,
            metrics: 60.0,
            alarms: 40.0,
            dashboards: 1.0,
        }
    }

    /// The inputs for 1,000 tenants from the merged figures: the fleet simulation's
    /// `fleet.1000.*` when present, else [`Inputs::assumed`]; the scheduler's time from the
    /// fan-out bench when present; the normalization CPU from the normalize bench as the
    /// floor of C when the fleet gave none.
    pub fn from_figures(m: &Merged) -> (Self, Source) {
        let mut i = Inputs::assumed(1000.0);
        let n = 1000u32;
        let fleet = |k: &str| m.value(&format!("fleet.{n}.{k}"));
        let source = match (
            fleet("jobs_per_tenant_day"),
            fleet("events_per_tenant_day"),
            fleet("requests_per_tenant_hour"),
        ) {
            (Some(j), Some(e), Some(q)) => {
                i.jobs_per_tenant_day = j;
                i.events_per_tenant_day = e;
                i.requests_per_tenant_hour = q;
                if let Some(c) = fleet("cpu_s_per_tenant_day") {
                    i.cpu_s_per_tenant_day = c;
                }
                if let Some(a) = fleet("apps") {
                    i.apps = a.max(1.0);
                }
                Source::Fleet(n)
            }
            _ => Source::Assumed,
        };
        if i.cpu_s_per_tenant_day == 0.0
            && let Some(rate) = m.value("normalize_fast_signins").filter(|r| *r > 0.0)
        {
            i.cpu_s_per_tenant_day = i.events_per_tenant_day / rate;
        }
        if let Some(w) = m.value("fanout.10000.wall_s") {
            i.scheduler_s_per_slot = w * i.tenants / 10_000.0;
        }
        (i, source)
    }
}

/// The monthly cost by service (USD).
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    /// Poller jobs per month.
    pub jobs_month: f64,
    /// Wall seconds per job.
    pub s_per_job: f64,
    /// Lambda GB-seconds per month (pollers and scheduler).
    pub lambda_gb_s: f64,
    /// Lambda (compute and requests).
    pub lambda: f64,
    /// SQS (jobs and events queues).
    pub sqs: f64,
    /// DynamoDB (requests and storage).
    pub dynamodb: f64,
    /// Secrets Manager.
    pub secrets: f64,
    /// CloudWatch (logs, metrics, alarms, dashboard).
    pub cloudwatch: f64,
}

impl Breakdown {
    /// The model (docs/COST.md, "Formula").
    pub fn of(i: &Inputs, p: &Prices) -> Self {
        let d = DAYS_PER_MONTH;
        let jobs = i.tenants * d * i.jobs_per_tenant_day;
        let j = i.jobs_per_tenant_day.max(1e-9);
        // Wall time of a job: its Microsoft requests, its CPU, its AWS calls.
        let s_per_job = i.requests_per_tenant_hour * 24.0 / j * i.latency_s_per_request
            + i.cpu_s_per_tenant_day / j
            + i.aws_overhead_s_per_job;
        let slots = d * 86_400.0 / i.slot_s;
        let poller_gb_s = jobs * s_per_job * i.poller_memory_mb / 1024.0;
        let scheduler_gb_s = slots * i.scheduler_s_per_slot * i.scheduler_memory_mb / 1024.0;
        let invocations = jobs / i.jobs_per_invocation.max(1.0) + slots;
        let lambda =
            (poller_gb_s + scheduler_gb_s) * p.lambda_gb_s + invocations * p.lambda_request;

        // Jobs: sent in batches of 10, received and deleted per poller batch.
        let jobs_requests = jobs / 10.0 + 2.0 * jobs / i.jobs_per_invocation.max(1.0);
        // Events: each 64 KB chunk sent, and received by the consumer; deletes batched by 10
        // messages of up to 256 KB.
        let event_bytes = i.tenants * d * i.events_per_tenant_day * i.event_bytes;
        let chunks = (event_bytes / 65_536.0).ceil();
        let events_requests = 2.0 * chunks + event_bytes / 262_144.0 / 10.0;
        let sqs = jobs_requests * p.sqs_fifo_request + events_requests * p.sqs_standard_request;

        // The scheduler scans the registry every slot (eventually consistent: half a unit per
        // 4 KB).
        let scan_rru = slots * (i.tenants * i.registry_item_bytes / 4096.0).ceil() * 0.5;
        let dynamodb = jobs * i.wru_per_job * p.ddb_wru
            + (jobs * i.rru_per_job + scan_rru) * p.ddb_rru
            + i.tenants * i.stored_bytes_per_tenant / 1e9 * p.ddb_gb_month;

        let secret_calls = i.poller_containers * d * 86_400.0 / i.secret_ttl_s.max(1.0);
        let secrets = i.apps * p.secret_month + secret_calls * p.secret_call;

        let log_gb = jobs * i.log_bytes_per_job / 1e9;
        let cloudwatch = log_gb * p.logs_gb
            + log_gb * i.log_months_kept * p.logs_gb_month
            + i.metrics * p.metric_month
            + i.alarms * p.alarm_month
            + i.dashboards * p.dashboard_month;

        Breakdown {
            jobs_month: jobs,
            s_per_job,
            lambda_gb_s: poller_gb_s + scheduler_gb_s,
            lambda,
            sqs,
            dynamodb,
            secrets,
            cloudwatch,
        }
    }

    /// The total (USD per month).
    pub fn total(&self) -> f64 {
        self.lambda + self.sqs + self.dynamodb + self.secrets + self.cloudwatch
    }

    /// The breakdown as text lines.
    pub fn describe(&self, i: &Inputs, source: &Source) -> String {
        let mut s = String::new();
        let from = match source {
            Source::Fleet(n) => format!("fleet.{n}.* figures of the fleet simulation"),
            Source::Assumed => "no fleet figures: every log stream every slot, issue 14's 30 requests per tenant-hour and its mix's events (NOT measured by make bench)".to_string(),
        };
        let _ = writeln!(
            s,
            "cost model, {} tenants, inputs from {from}: J={:.1} jobs/tenant-day, E={:.0} events/tenant-day, Q={:.1} requests/tenant-hour, C={:.3} CPU s/tenant-day",
            i.tenants,
            i.jobs_per_tenant_day,
            i.events_per_tenant_day,
            i.requests_per_tenant_hour,
            i.cpu_s_per_tenant_day
        );
        let _ = writeln!(
            s,
            "  {:.0} jobs/month, {:.3} s/job, {:.0} GB-s: Lambda ${:.2}, SQS ${:.2}, DynamoDB ${:.2}, Secrets Manager ${:.2}, CloudWatch ${:.2}; total ${:.2}/month",
            self.jobs_month,
            self.s_per_job,
            self.lambda_gb_s,
            self.lambda,
            self.sqs,
            self.dynamodb,
            self.secrets,
            self.cloudwatch,
            self.total()
        );
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::bench_results::parse_file;

    #[test]
    fn fleet_figures_replace_the_assumptions() {
        let mut m = Merged::default();
        parse_file(
            "bench-fleet.json",
            r#"[{"name":"fleet.1000.jobs_per_tenant_day","value":300},
                {"name":"fleet.1000.events_per_tenant_day","value":5000},
                {"name":"fleet.1000.requests_per_tenant_hour","value":12},
                {"name":"fleet.1000.cpu_s_per_tenant_day","value":0.5},
                {"name":"fleet.1000.apps","value":2},
                {"name":"fanout.10000.wall_s","value":4}]"#,
            &mut m,
        );
        let (i, src) = Inputs::from_figures(&m);
        assert_eq!(src, Source::Fleet(1000));
        assert_eq!(i.jobs_per_tenant_day, 300.0);
        assert_eq!(i.events_per_tenant_day, 5000.0);
        assert_eq!(i.requests_per_tenant_hour, 12.0);
        assert_eq!(i.apps, 2.0);
        assert_eq!(i.scheduler_s_per_slot, 0.4);
    }

    #[test]
    fn without_fleet_figures_the_source_says_so() {
        let mut m = Merged::default();
        parse_file(
            "bench-normalize.json",
            r#"[{"name":"normalize_fast_signins","value":100000}]"#,
            &mut m,
        );
        let (i, src) = Inputs::from_figures(&m);
        assert_eq!(src, Source::Assumed);
        // The normalization CPU of the day's events is the floor of C.
        assert!((i.cpu_s_per_tenant_day - i.events_per_tenant_day / 100_000.0).abs() < 1e-12);
        let b = Breakdown::of(&i, &US_EAST_1);
        assert!(b.describe(&i, &src).contains("NOT measured"));
    }

    #[test]
    fn the_formula_by_hand_for_lambda() {
        // One tenant, one job a day of one second (no requests, no overhead), 1024 MB, no
        // scheduler time: 30.4375 GB-s a month.
        let mut i = Inputs::assumed(1.0);
        i.jobs_per_tenant_day = 1.0;
        i.requests_per_tenant_hour = 0.0;
        i.cpu_s_per_tenant_day = 1.0;
        i.aws_overhead_s_per_job = 0.0;
        i.poller_memory_mb = 1024.0;
        i.scheduler_s_per_slot = 0.0;
        let b = Breakdown::of(&i, &US_EAST_1);
        assert!((b.lambda_gb_s - DAYS_PER_MONTH).abs() < 1e-9);
        assert!((b.s_per_job - 1.0).abs() < 1e-12);
    }

    #[test]
    fn cost_grows_with_jobs_and_events() {
        let base = Inputs::assumed(1000.0);
        let b0 = Breakdown::of(&base, &US_EAST_1).total();
        let mut more_jobs = base.clone();
        more_jobs.jobs_per_tenant_day *= 2.0;
        let mut more_events = base.clone();
        more_events.events_per_tenant_day *= 10.0;
        assert!(Breakdown::of(&more_jobs, &US_EAST_1).total() > b0);
        assert!(Breakdown::of(&more_events, &US_EAST_1).total() > b0);
        assert!(b0 > 0.0);
    }
}

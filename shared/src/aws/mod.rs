//! The AWS side of the pipeline: adapters behind the same traits as the embedded ones, and the
//! Lambda handlers as library functions (the function crates only wire them up).
//!
//! - [`dynamo`]: the tenant registry and the cursor store on DynamoDB (versioned
//!   compare-and-set with `ConditionExpression`).
//! - [`sqs`]: the event and dead-letter sinks on SQS (`SendMessageBatch`, size-capped, only
//!   failed entries retried), and the batch sender the scheduler uses for the jobs queues.
//! - [`secrets`]: app credentials from Secrets Manager, cached across warm invocations.
//! - [`jobs`]: the job message, its FIFO group and deduplication ids, and the scheduler's
//!   fan-out.
//! - [`config`]: typed configuration from the environment, validated at cold start.
//! - [`handler`]: the scheduler and poller handlers and the contexts they run with.
//! - [`report`]: the report function (the Identity Security Assessment on AWS).
//! - [`actions`]: the actions functions' handler (response actions from a queue or a direct
//!   invocation, one function per cloud group) and its context.
//!
//! The fleet-wide request budget is explained in `RATE_BUDGET.md` beside this file.
//!
//! Only SDK error codes reach errors and logs, never request or response content.

pub mod actions;
pub mod config;
pub mod dynamo;
pub mod handler;
pub mod jobs;
pub mod lambda;
pub mod report;
pub mod secrets;
pub mod sqs;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::http::{EndpointOverride, OverrideError};

/// Where the AWS SDK clients send their requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AwsEndpoint {
    /// The default chains: region, credentials and endpoints from the Lambda environment.
    Default,
    /// A local emulator on a loopback address (moto in tests), region `us-east-1` and static
    /// test credentials.
    Local(EndpointOverride),
}

impl AwsEndpoint {
    /// A local emulator endpoint such as `http://127.0.0.1:5000`; only loopback HTTP is accepted.
    pub fn local(url: &str) -> Result<Self, OverrideError> {
        EndpointOverride::parse(url).map(AwsEndpoint::Local)
    }
}

/// Builds the SDK configuration with the one HTTP stack of the workspace (hyper 1, rustls,
/// ring), shared by every AWS client built from it.
pub async fn sdk_config(endpoint: &AwsEndpoint) -> SdkConfig {
    crate::http::install_crypto_provider();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http);
    match endpoint {
        AwsEndpoint::Default => loader.load().await,
        AwsEndpoint::Local(o) => {
            loader
                .endpoint_url(o.base().as_str().trim_end_matches('/'))
                .region(Region::new("us-east-1"))
                .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                    "test", "test", None, None, "static",
                ))
                .load()
                .await
        }
    }
}

/// A short description of an SDK failure: the operation and the service's error code, or the
/// kind of transport failure. Never the request, the response body or a message that could
/// quote either.
pub(crate) fn describe<E: ProvideErrorMetadata, R>(op: &str, e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => {
            format!(
                "{op}: {}",
                s.err().code().unwrap_or("unknown service error")
            )
        }
        SdkError::TimeoutError(_) => format!("{op}: timed out"),
        SdkError::DispatchFailure(_) => format!("{op}: connection failed"),
        SdkError::ResponseError(_) => format!("{op}: unreadable response"),
        SdkError::ConstructionFailure(_) => format!("{op}: request could not be built"),
        _ => format!("{op}: sdk error"),
    }
}

/// The service error code of an SDK failure, if the service answered.
pub(crate) fn error_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> Option<&str> {
    match e {
        SdkError::ServiceError(s) => s.err().code(),
        _ => None,
    }
}

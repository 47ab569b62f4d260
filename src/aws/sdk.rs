//! [`Cloud`] on the AWS SDK: one EC2 and one KMS client per account and region, with the
//! account's role assumed where the spec names one.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::{
    CreateVolumePermission, CreateVolumePermissionModifications, Filter, ImageAttributeName,
    LaunchPermission, LaunchPermissionModifications, PermissionGroup, ResourceType,
    SnapshotAttributeName, Tag, TagSpecification,
};
use aws_sdk_kms::types::KeyManagerType;

use super::{AwsError, AwsResult, Cloud};
use crate::model::{
    CopyRequest, Image, KeyManager, KeyMetadata, LaunchEntry, Scope, Snapshot, TAG_COPY_OF,
};
use crate::spec::{AssumeRole, Spec};

/// Largest number of values sent in one DescribeImages or DescribeSnapshots filter.
// NOTE: EC2 documents no per-filter value limit; 200 is what the EC2 console pages by and
// is well below the request size limit.
const FILTER_VALUES_PER_CALL: usize = 200;

/// Attempts per call, including the first, for throttling and transient errors. The SDK's
/// standard mode backs off exponentially with jitter between them.
const MAX_ATTEMPTS: u32 = 6;

struct Clients {
    ec2: aws_sdk_ec2::Client,
    kms: aws_sdk_kms::Client,
}

/// [`Cloud`] on the AWS SDK.
pub struct SdkCloud {
    clients: HashMap<Scope, Clients>,
    /// The principal calls in each account are made as, by account id.
    callers: HashMap<String, String>,
}

/// Failure to connect to AWS.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot find which account the default credentials act in")]
    CallerIdentity(#[source] AwsError),
    #[error(
        "account `{declared}` declares no `role_arn`, but the default credentials act in \
         account `{actual}`"
    )]
    WrongAccount { declared: String, actual: String },
}

impl SdkCloud {
    /// Images the scope's account owns that match one filter, whatever their state.
    async fn images_by_filter(
        &self,
        scope: &Scope,
        name: &str,
        values: &[String],
    ) -> AwsResult<Vec<Image>> {
        let ec2 = &self.clients(scope)?.ec2;
        let mut images = Vec::new();
        for chunk in values.chunks(FILTER_VALUES_PER_CALL) {
            let filter = Filter::builder()
                .name(name)
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut pages = ec2
                .describe_images()
                .owners("self")
                .include_disabled(true)
                .include_deprecated(true)
                .filters(filter)
                .into_paginator()
                .items()
                .send();
            while let Some(image) = pages.next().await {
                let image = image.map_err(|e| error("DescribeImages", scope, e))?;
                images.push(image_from_sdk(&image));
            }
        }
        Ok(images)
    }

    /// Makes clients for every account and region the spec reads or changes. The standard
    /// credential chain and environment (`AWS_PROFILE`, `AWS_ENDPOINT_URL`, ...) apply.
    pub async fn connect(spec: &Spec) -> Result<SdkCloud, ConnectError> {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(60))
                    .build(),
            )
            .load()
            .await;
        let mut clients = HashMap::new();
        let mut callers = HashMap::new();
        let mut ambient = None;
        for scope in scopes(spec) {
            let role = spec.account(&scope.account).and_then(|a| a.role.as_ref());
            let config = match role {
                Some(role) => {
                    callers.insert(scope.account.clone(), role.arn.clone());
                    assumed(&base, role, &scope.region).await
                }
                None => {
                    let identity = match &ambient {
                        Some(identity) => Identity::clone(identity),
                        None => caller_identity(&base, &scope).await?,
                    };
                    if identity.account != scope.account {
                        return Err(ConnectError::WrongAccount {
                            declared: scope.account,
                            actual: identity.account,
                        });
                    }
                    callers.insert(scope.account.clone(), identity.arn.clone());
                    ambient = Some(identity);
                    base.to_builder()
                        .region(Region::new(scope.region.clone()))
                        .build()
                }
            };
            let ec2 = aws_sdk_ec2::Client::new(&config);
            let kms = aws_sdk_kms::Client::new(&config);
            clients.insert(scope, Clients { ec2, kms });
        }
        Ok(SdkCloud { clients, callers })
    }

    fn clients(&self, scope: &Scope) -> AwsResult<&Clients> {
        self.clients.get(scope).ok_or_else(|| AwsError {
            operation: "connect",
            scope: scope.clone(),
            code: None,
            message: "no client for this account and region; it is not in the spec".to_owned(),
            request_id: None,
        })
    }
}

/// Returns every account and region that contains a declared image or key, or a copy.
fn scopes(spec: &Spec) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = spec
        .images
        .iter()
        .map(|g| Scope::new(&g.account, &g.region))
        .chain(spec.keys.iter().map(|k| Scope::new(&k.account, &k.region)))
        .chain(crate::copies::scopes(spec))
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

async fn assumed(base: &SdkConfig, role: &AssumeRole, region: &str) -> SdkConfig {
    let mut provider = AssumeRoleProvider::builder(role.arn.clone())
        .session_name("amishare")
        .region(Region::new(region.to_owned()))
        .configure(base);
    if let Some(external_id) = &role.external_id {
        provider = provider.external_id(external_id.clone());
    }
    let provider = provider.build().await;
    base.to_builder()
        .region(Region::new(region.to_owned()))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(provider),
        )
        .build()
}

/// The account and ARN of the default credentials, from GetCallerIdentity.
#[derive(Clone)]
struct Identity {
    account: String,
    arn: String,
}

async fn caller_identity(base: &SdkConfig, scope: &Scope) -> Result<Identity, ConnectError> {
    let config = base
        .to_builder()
        .region(Region::new(scope.region.clone()))
        .build();
    let sts = aws_sdk_sts::Client::new(&config);
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| ConnectError::CallerIdentity(error("GetCallerIdentity", scope, e)))?;
    Ok(Identity {
        account: identity.account().unwrap_or_default().to_owned(),
        arn: identity.arn().unwrap_or_default().to_owned(),
    })
}

/// Converts an SDK error, keeping the AWS error code, message and request id.
fn error<E>(
    operation: &'static str,
    scope: &Scope,
    err: SdkError<E, aws_sdk_ec2::config::http::HttpResponse>,
) -> AwsError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let request_id = err.request_id().map(str::to_owned);
    let code = err.code().map(str::to_owned);
    let message = match (&code, err.message()) {
        (_, Some(message)) => message.to_owned(),
        (Some(_), None) => "AWS returned no message".to_owned(),
        // No response to read a code from, such as a connection failure. The full context
        // can hold a whole raw response, so only its first line is kept.
        (None, None) => first_line(&DisplayErrorContext(&err).to_string(), 300),
    };
    AwsError {
        operation,
        scope: scope.clone(),
        code,
        message,
        request_id,
    }
}

fn image_from_sdk(image: &aws_sdk_ec2::types::Image) -> Image {
    Image {
        id: image.image_id().unwrap_or_default().to_owned(),
        name: image.name().map(str::to_owned),
        state: image
            .state()
            .map(|s| s.as_str().to_owned())
            .unwrap_or_default(),
        owner: image.owner_id().unwrap_or_default().to_owned(),
        snapshot_ids: image
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs()?.snapshot_id().map(str::to_owned))
            .collect(),
        state_reason: image
            .state_reason()
            .and_then(|r| r.message().or(r.code()))
            .map(str::to_owned),
        tags: image
            .tags()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        creation_date: image.creation_date().map(str::to_owned),
        deprecation_time: image.deprecation_time().map(str::to_owned),
    }
}

fn first_line(text: &str, max_chars: usize) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line.to_owned(),
    }
}

fn launch_permission(entry: &LaunchEntry) -> LaunchPermission {
    let builder = LaunchPermission::builder();
    match entry {
        LaunchEntry::Account(id) => builder.user_id(id),
        LaunchEntry::Organization(arn) => builder.organization_arn(arn),
        LaunchEntry::OrganizationalUnit(arn) => builder.organizational_unit_arn(arn),
        LaunchEntry::Public => builder.group(PermissionGroup::All),
    }
    .build()
}

fn launch_entry(permission: &LaunchPermission) -> Option<LaunchEntry> {
    if let Some(id) = permission.user_id() {
        return Some(LaunchEntry::Account(id.to_owned()));
    }
    if let Some(arn) = permission.organization_arn() {
        return Some(LaunchEntry::Organization(arn.to_owned()));
    }
    if let Some(arn) = permission.organizational_unit_arn() {
        return Some(LaunchEntry::OrganizationalUnit(arn.to_owned()));
    }
    match permission.group() {
        Some(PermissionGroup::All) => Some(LaunchEntry::Public),
        _ => None,
    }
}

fn volume_permissions(accounts: &[String]) -> Option<Vec<CreateVolumePermission>> {
    if accounts.is_empty() {
        return None;
    }
    Some(
        accounts
            .iter()
            .map(|id| CreateVolumePermission::builder().user_id(id).build())
            .collect(),
    )
}

#[async_trait]
impl Cloud for SdkCloud {
    async fn describe_images(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Image>> {
        // A filter, unlike ImageIds, leaves missing ids out instead of failing the call.
        self.images_by_filter(scope, "image-id", ids).await
    }

    async fn select_images(
        &self,
        scope: &Scope,
        name: Option<&str>,
        tags: &[(String, String)],
    ) -> AwsResult<Vec<Image>> {
        let mut filters: Vec<Filter> = tags
            .iter()
            .map(|(k, v)| Filter::builder().name(format!("tag:{k}")).values(v).build())
            .collect();
        if let Some(name) = name {
            filters.push(Filter::builder().name("name").values(name).build());
        }
        let ec2 = &self.clients(scope)?.ec2;
        let mut pages = ec2
            .describe_images()
            .owners("self")
            .set_filters(Some(filters))
            .into_paginator()
            .items()
            .send();
        let mut images = Vec::new();
        while let Some(image) = pages.next().await {
            let image = image.map_err(|e| error("DescribeImages", scope, e))?;
            images.push(image_from_sdk(&image));
        }
        Ok(images)
    }

    async fn find_copies(&self, scope: &Scope, copy_of: &[String]) -> AwsResult<Vec<Image>> {
        self.images_by_filter(scope, &format!("tag:{TAG_COPY_OF}"), copy_of)
            .await
    }

    async fn copy_image(&self, scope: &Scope, request: &CopyRequest) -> AwsResult<String> {
        let tags: Vec<Tag> = request
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let tagging = |resource| {
            TagSpecification::builder()
                .resource_type(resource)
                .set_tags(Some(tags.clone()))
                .build()
        };
        let output = self
            .clients(scope)?
            .ec2
            .copy_image()
            .source_region(&request.source.region)
            .source_image_id(&request.source_image)
            .name(&request.name)
            .encrypted(true)
            .kms_key_id(&request.key_arn)
            .client_token(&request.client_token)
            // Tagged in the same call, so a copy is never without the tags that find it.
            .tag_specifications(tagging(ResourceType::Image))
            .tag_specifications(tagging(ResourceType::Snapshot))
            .send()
            .await
            .map_err(|e| error("CopyImage", scope, e))?;
        output
            .image_id()
            .map(str::to_owned)
            .ok_or_else(|| AwsError {
                operation: "CopyImage",
                scope: scope.clone(),
                code: None,
                message: "the response contains no image id".to_owned(),
                request_id: output.request_id().map(str::to_owned),
            })
    }

    async fn describe_snapshots(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Snapshot>> {
        let ec2 = &self.clients(scope)?.ec2;
        let mut snapshots = Vec::new();
        for chunk in ids.chunks(FILTER_VALUES_PER_CALL) {
            let filter = Filter::builder()
                .name("snapshot-id")
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut pages = ec2
                .describe_snapshots()
                .filters(filter)
                .into_paginator()
                .items()
                .send();
            while let Some(snapshot) = pages.next().await {
                let snapshot = snapshot.map_err(|e| error("DescribeSnapshots", scope, e))?;
                snapshots.push(Snapshot {
                    id: snapshot.snapshot_id().unwrap_or_default().to_owned(),
                    encrypted: snapshot.encrypted().unwrap_or(false),
                    kms_key_id: snapshot.kms_key_id().map(str::to_owned),
                });
            }
        }
        Ok(snapshots)
    }

    async fn launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
    ) -> AwsResult<Vec<LaunchEntry>> {
        let output = self
            .clients(scope)?
            .ec2
            .describe_image_attribute()
            .image_id(image_id)
            .attribute(ImageAttributeName::LaunchPermission)
            .send()
            .await
            .map_err(|e| error("DescribeImageAttribute", scope, e))?;
        Ok(output
            .launch_permissions()
            .iter()
            .filter_map(launch_entry)
            .collect())
    }

    async fn create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
    ) -> AwsResult<Vec<String>> {
        let output = self
            .clients(scope)?
            .ec2
            .describe_snapshot_attribute()
            .snapshot_id(snapshot_id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .send()
            .await
            .map_err(|e| error("DescribeSnapshotAttribute", scope, e))?;
        Ok(output
            .create_volume_permissions()
            .iter()
            .filter_map(|p| p.user_id().map(str::to_owned))
            .collect())
    }

    async fn describe_key(&self, scope: &Scope, key: &str) -> AwsResult<KeyMetadata> {
        let output = self
            .clients(scope)?
            .kms
            .describe_key()
            .key_id(key)
            .send()
            .await
            .map_err(|e| error("DescribeKey", scope, e))?;
        let metadata = output.key_metadata().ok_or_else(|| AwsError {
            operation: "DescribeKey",
            scope: scope.clone(),
            code: None,
            message: format!("the response for key `{key}` contains no key metadata"),
            request_id: output.request_id().map(str::to_owned),
        })?;
        Ok(KeyMetadata {
            arn: metadata.arn().unwrap_or_default().to_owned(),
            key_id: metadata.key_id().to_owned(),
            manager: match metadata.key_manager() {
                Some(KeyManagerType::Aws) => KeyManager::Aws,
                _ => KeyManager::Customer,
            },
            state: metadata
                .key_state()
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
        })
    }

    async fn get_key_policy(&self, scope: &Scope, key_id: &str) -> AwsResult<String> {
        let output = self
            .clients(scope)?
            .kms
            .get_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .send()
            .await
            .map_err(|e| error("GetKeyPolicy", scope, e))?;
        Ok(output.policy().unwrap_or_default().to_owned())
    }

    async fn modify_launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
        add: &[LaunchEntry],
        remove: &[LaunchEntry],
    ) -> AwsResult<()> {
        let as_list = |entries: &[LaunchEntry]| {
            (!entries.is_empty()).then(|| entries.iter().map(launch_permission).collect())
        };
        let modifications = LaunchPermissionModifications::builder()
            .set_add(as_list(add))
            .set_remove(as_list(remove))
            .build();
        self.clients(scope)?
            .ec2
            .modify_image_attribute()
            .image_id(image_id)
            .launch_permission(modifications)
            .send()
            .await
            .map_err(|e| error("ModifyImageAttribute", scope, e))?;
        Ok(())
    }

    async fn modify_create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
        add: &[String],
        remove: &[String],
    ) -> AwsResult<()> {
        let modifications = CreateVolumePermissionModifications::builder()
            .set_add(volume_permissions(add))
            .set_remove(volume_permissions(remove))
            .build();
        self.clients(scope)?
            .ec2
            .modify_snapshot_attribute()
            .snapshot_id(snapshot_id)
            .attribute(SnapshotAttributeName::CreateVolumePermission)
            .create_volume_permission(modifications)
            .send()
            .await
            .map_err(|e| error("ModifySnapshotAttribute", scope, e))?;
        Ok(())
    }

    async fn put_key_policy(&self, scope: &Scope, key_id: &str, policy: &str) -> AwsResult<()> {
        self.clients(scope)?
            .kms
            .put_key_policy()
            .key_id(key_id)
            .policy_name("default")
            .policy(policy)
            .send()
            .await
            .map_err(|e| error("PutKeyPolicy", scope, e))?;
        Ok(())
    }

    fn caller(&self, scope: &Scope) -> Option<String> {
        self.callers.get(&scope.account).cloned()
    }
}

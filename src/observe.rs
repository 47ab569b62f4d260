//! Reads the live state the spec refers to: images, their snapshots and permissions, and
//! key metadata and policies.
//!
//! Calls are one per account and region (DescribeImages, DescribeSnapshots, paginated),
//! one per image (DescribeImageAttribute), one per snapshot where copy rights matter
//! (DescribeSnapshotAttribute) and two per key (DescribeKey, GetKeyPolicy): never one
//! per image and target pair. Independent calls run concurrently under one bound.

use std::collections::{BTreeMap, BTreeSet};

use futures::future::{join_all, try_join_all};
use tokio::sync::Semaphore;
use tracing::debug;

use crate::aws::{AwsError, Cloud};
use crate::copies;
use crate::model::{Image, KeyMetadata, LaunchEntry, Scope, Snapshot, TAG_COPY_OF};
use crate::spec::{ImageGroup, Key, Spec};

/// Calls in flight at once, across all accounts and regions. Each account and region
/// gets at most this many, well inside EC2's burst of 100 for the describe calls.
pub const MAX_CALLS_IN_FLIGHT: usize = 16;

/// Live state of everything the spec declares.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub images: BTreeMap<(Scope, String), ObservedImage>,
    /// Declared keys by logical name.
    pub keys: BTreeMap<String, ObservedKey>,
    /// Metadata of keys that are not declared keys, by ARN: keys found on snapshots,
    /// and target keys that copies are made under.
    pub snapshot_keys: BTreeMap<String, Result<KeyMetadata, AwsError>>,
    /// Copies amishare made, in any state, by the account and region they are in.
    pub copies: BTreeMap<Scope, Vec<ObservedImage>>,
    /// Ids each image group with a selector resolved to, by the group's index in the spec.
    pub selected: BTreeMap<usize, Vec<String>>,
    /// The principal amishare calls AWS as in each account with a declared key, by
    /// account id, for the lockout guard.
    pub callers: BTreeMap<String, String>,
    /// Listed images that DescribeImages did not return: deregistered, owned by another
    /// account, or never there.
    pub missing: BTreeSet<(Scope, String)>,
}

impl Observed {
    /// The image ids of the group at `index`: those it lists, or those its selector matched.
    pub fn image_ids<'a>(&'a self, index: usize, group: &'a ImageGroup) -> &'a [String] {
        self.selected
            .get(&index)
            .map_or(&group.image_ids, Vec::as_slice)
    }
}

#[derive(Clone, Debug)]
pub struct ObservedImage {
    pub image: Image,
    pub launch: BTreeSet<LaunchEntry>,
    pub snapshots: Vec<ObservedSnapshot>,
}

#[derive(Clone, Debug)]
pub struct ObservedSnapshot {
    pub snapshot: Snapshot,
    /// createVolumePermission accounts; `None` when it was not read because nothing in
    /// the spec depends on it.
    pub volume_permissions: Option<BTreeSet<String>>,
    /// DescribeSnapshots did not return the snapshot, so `snapshot` holds only its id.
    pub missing: bool,
}

#[derive(Clone, Debug)]
pub enum ObservedKey {
    Found {
        metadata: KeyMetadata,
        policy: String,
    },
    /// DescribeKey or GetKeyPolicy failed with a client error, such as a missing key.
    Unreadable(AwsError),
}

struct Observer<'a> {
    cloud: &'a dyn Cloud,
    permits: Semaphore,
}

impl Observer<'_> {
    async fn limited<T>(&self, call: impl std::future::Future<Output = T>) -> T {
        // The semaphore is never closed, so acquiring only waits.
        let _permit = self.permits.acquire().await;
        call.await
    }
}

/// Reads the live state of every image and key in the spec. Images not found and client
/// errors on keys are recorded for the plan to report; any other failed call stops the read.
pub async fn observe(cloud: &dyn Cloud, spec: &Spec) -> Result<Observed, AwsError> {
    let observer = Observer {
        cloud,
        permits: Semaphore::new(MAX_CALLS_IN_FLIGHT),
    };
    let selected = observer.resolve_selectors(spec).await?;
    let mut resolved = spec.clone();
    for (index, ids) in &selected {
        resolved.images[*index].image_ids.clone_from(ids);
    }
    let spec = &resolved;
    let selections = selections(spec);
    let image_reads = selections
        .iter()
        .map(|(scope, wanted)| observer.scope_images(scope, wanted));
    let key_reads = spec.keys.iter().map(|key| observer.key(key));
    let searches = copies::searches(spec);
    let copy_reads = searches
        .iter()
        .map(|(scope, copy_of)| observer.scope_copies(scope, copy_of));
    let (images, keys, copies) = futures::join!(
        join_all(image_reads),
        join_all(key_reads),
        join_all(copy_reads)
    );

    let mut observed = Observed {
        selected,
        ..Observed::default()
    };
    for result in images {
        let (found, not_found) = result?;
        observed.missing.extend(not_found);
        observed.images.extend(found);
    }
    for (key, result) in spec.keys.iter().zip(keys) {
        observed.keys.insert(key.name.clone(), result?);
        if let Some(caller) = cloud.caller(&Scope::new(&key.account, &key.region)) {
            observed.callers.insert(key.account.clone(), caller);
        }
    }
    for (scope, result) in searches.keys().zip(copies) {
        observed.copies.insert(scope.clone(), result?);
    }
    observed.snapshot_keys = observer
        .snapshot_keys(&observed, copies::arn_keys(spec))
        .await;
    Ok(observed)
}

/// What to read in one account and region: image ids, and whether each image's
/// createVolumePermission matters.
type Selection = BTreeMap<String, bool>;

fn selections(spec: &Spec) -> BTreeMap<Scope, Selection> {
    let mut selections: BTreeMap<Scope, Selection> = BTreeMap::new();
    for group in &spec.images {
        let copy_matters =
            spec.settings.prune || copies::direct_targets(group).iter().any(|t| t.copy);
        let selection = selections
            .entry(Scope::new(&group.account, &group.region))
            .or_default();
        for id in &group.image_ids {
            *selection.entry(id.clone()).or_default() |= copy_matters;
        }
    }
    selections
}

type ScopeImages = (Vec<((Scope, String), ObservedImage)>, Vec<(Scope, String)>);

impl Observer<'_> {
    async fn scope_images(
        &self,
        scope: &Scope,
        wanted: &Selection,
    ) -> Result<ScopeImages, AwsError> {
        let ids: Vec<String> = wanted.keys().cloned().collect();
        let images = self
            .limited(self.cloud.describe_images(scope, &ids))
            .await?;
        let found: BTreeSet<&str> = images.iter().map(|i| i.id.as_str()).collect();
        let missing = ids
            .iter()
            .filter(|id| !found.contains(id.as_str()))
            .map(|id| (scope.clone(), id.clone()))
            .collect();
        debug!(account = %scope.account, region = %scope.region, found = images.len(), "described images");

        let snapshots = self.snapshots_of(scope, &images).await?;

        let reads = images.into_iter().map(|image| {
            let copy_matters = wanted.get(&image.id).copied().unwrap_or(false);
            self.image(scope, image, &snapshots, copy_matters)
        });
        let observed = try_join_all(reads).await?;
        Ok((
            observed
                .into_iter()
                .map(|o| ((scope.clone(), o.image.id.clone()), o))
                .collect(),
            missing,
        ))
    }

    async fn image(
        &self,
        scope: &Scope,
        image: Image,
        snapshots: &BTreeMap<String, Snapshot>,
        copy_matters: bool,
    ) -> Result<ObservedImage, AwsError> {
        let launch = self.limited(self.cloud.launch_permissions(scope, &image.id));
        let volume_reads = image.snapshot_ids.iter().map(|id| async move {
            let missing = !snapshots.contains_key(id);
            let snapshot = snapshots.get(id).cloned().unwrap_or_else(|| Snapshot {
                id: id.clone(),
                encrypted: false,
                kms_key_id: None,
            });
            let volume_permissions = if copy_matters {
                let users = self
                    .limited(self.cloud.create_volume_permissions(scope, id))
                    .await?;
                Some(users.into_iter().collect())
            } else {
                None
            };
            Ok::<_, AwsError>(ObservedSnapshot {
                snapshot,
                volume_permissions,
                missing,
            })
        });
        let (launch, snapshots) = futures::join!(launch, try_join_all(volume_reads));
        Ok(ObservedImage {
            image,
            launch: launch?.into_iter().collect(),
            snapshots: snapshots?,
        })
    }

    /// Describes every snapshot of `images` in one paginated call, by id.
    async fn snapshots_of(
        &self,
        scope: &Scope,
        images: &[Image],
    ) -> Result<BTreeMap<String, Snapshot>, AwsError> {
        let ids: Vec<String> = images
            .iter()
            .flat_map(|i| i.snapshot_ids.iter().cloned())
            .collect();
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let snapshots = self
            .limited(self.cloud.describe_snapshots(scope, &ids))
            .await?;
        Ok(snapshots.into_iter().map(|s| (s.id.clone(), s)).collect())
    }

    /// Resolves each image group's selector to image ids: the matching images, newest
    /// first, cut to `newest`, then sorted by id.
    async fn resolve_selectors(
        &self,
        spec: &Spec,
    ) -> Result<BTreeMap<usize, Vec<String>>, AwsError> {
        let reads = spec.images.iter().enumerate().filter_map(|(index, group)| {
            let selector = group.selector.as_ref()?;
            let scope = Scope::new(&group.account, &group.region);
            Some(async move {
                let mut images = self
                    .limited(self.cloud.select_images(
                        &scope,
                        selector.name.as_deref(),
                        &selector.tags,
                    ))
                    .await?;
                // A copy amishare made of a selected image may match the same name and
                // tags; it is planned as a copy, never as a selected image of its own.
                images.retain(|image| image.tag(TAG_COPY_OF).is_none());
                images.sort_by(|a, b| {
                    b.creation_date
                        .cmp(&a.creation_date)
                        .then_with(|| a.id.cmp(&b.id))
                });
                if let Some(newest) = selector.newest {
                    images.truncate(newest as usize);
                }
                let mut ids: Vec<String> = images.into_iter().map(|i| i.id).collect();
                ids.sort();
                Ok::<_, AwsError>((index, ids))
            })
        });
        Ok(try_join_all(reads).await?.into_iter().collect())
    }

    /// Reads the copies in one account and region, with their snapshots and permissions.
    async fn scope_copies(
        &self,
        scope: &Scope,
        copy_of: &BTreeSet<String>,
    ) -> Result<Vec<ObservedImage>, AwsError> {
        let values: Vec<String> = copy_of.iter().cloned().collect();
        let images = self.limited(self.cloud.find_copies(scope, &values)).await?;
        let snapshots = self.snapshots_of(scope, &images).await?;
        // Permissions exist only on available images; a pending copy has none to read.
        // Copies are few, so their createVolumePermission is always read.
        let reads = images.into_iter().map(|image| async {
            if image.state == "available" {
                self.image(scope, image, &snapshots, true).await
            } else {
                let snapshots = image.snapshot_ids.iter().map(|id| ObservedSnapshot {
                    snapshot: snapshots.get(id).cloned().unwrap_or_else(|| Snapshot {
                        id: id.clone(),
                        encrypted: false,
                        kms_key_id: None,
                    }),
                    volume_permissions: None,
                    missing: !snapshots.contains_key(id),
                });
                let snapshots = snapshots.collect();
                Ok(ObservedImage {
                    image,
                    launch: BTreeSet::new(),
                    snapshots,
                })
            }
        });
        try_join_all(reads).await
    }

    async fn key(&self, key: &Key) -> Result<ObservedKey, AwsError> {
        let scope = Scope::new(&key.account, &key.region);
        let metadata = match self
            .limited(self.cloud.describe_key(&scope, &key.reference))
            .await
        {
            Ok(metadata) => metadata,
            Err(err) if is_client_error(&err) => return Ok(ObservedKey::Unreadable(err)),
            Err(err) => return Err(err),
        };
        match self
            .limited(self.cloud.get_key_policy(&scope, &metadata.key_id))
            .await
        {
            Ok(policy) => Ok(ObservedKey::Found { metadata, policy }),
            Err(err) if is_client_error(&err) => Ok(ObservedKey::Unreadable(err)),
            Err(err) => Err(err),
        }
    }

    /// Describes each key found on a snapshot that is not a declared key, once per key.
    async fn snapshot_keys(
        &self,
        observed: &Observed,
        mut others: BTreeMap<String, Scope>,
    ) -> BTreeMap<String, Result<KeyMetadata, AwsError>> {
        let declared: BTreeSet<&str> = observed
            .keys
            .values()
            .filter_map(|k| match k {
                ObservedKey::Found { metadata, .. } => Some(metadata.arn.as_str()),
                ObservedKey::Unreadable(_) => None,
            })
            .collect();
        for ((scope, _), image) in &observed.images {
            for snapshot in &image.snapshots {
                if let Some(arn) = &snapshot.snapshot.kms_key_id
                    && !declared.contains(arn.as_str())
                {
                    others.entry(arn.clone()).or_insert_with(|| scope.clone());
                }
            }
        }
        let reads = others.into_iter().map(|(arn, scope)| async move {
            let result = self.limited(self.cloud.describe_key(&scope, &arn)).await;
            (arn, result)
        });
        join_all(reads).await.into_iter().collect()
    }
}

/// Client errors (missing key, access denied) become findings; anything else, such as a
/// network failure or exhausted retries, stops the run.
fn is_client_error(err: &AwsError) -> bool {
    matches!(
        err.code.as_deref(),
        Some(
            "NotFoundException"
                | "AccessDeniedException"
                | "AccessDenied"
                | "InvalidArnException"
                | "KMSInvalidStateException"
        )
    )
}

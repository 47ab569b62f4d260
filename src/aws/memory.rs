//! [`Cloud`] in memory: a small model of EC2 and KMS for unit tests, which also counts
//! calls and injects faults. It enforces nothing that amishare does not rely on.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::{AwsError, AwsResult, Cloud};
use crate::model::{
    CopyRequest, Image, KeyManager, KeyMetadata, LaunchEntry, Scope, Snapshot, TAG_COPY_OF,
};

#[derive(Clone, Debug)]
struct StoredKey {
    metadata: KeyMetadata,
    aliases: Vec<String>,
    policy: String,
}

/// The state a copy made by [`MemoryCloud`] ends in once it stops being pending.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CopyEnding {
    #[default]
    Available,
    /// The copy fails with this state reason.
    Failed(String),
    /// The copy becomes available with its snapshots under this key, not the requested one.
    WrongKey(String),
}

#[derive(Default)]
struct World {
    images: BTreeMap<(Scope, String), (Image, BTreeSet<LaunchEntry>)>,
    /// Copies still pending, with how many more reads of them they stay so.
    pending: BTreeMap<(Scope, String), usize>,
    copy_ending: CopyEnding,
    /// Reads a new copy stays pending for.
    pending_reads: usize,
    copies_made: usize,
    snapshots: BTreeMap<(Scope, String), (Snapshot, BTreeSet<String>)>,
    keys: BTreeMap<Scope, Vec<StoredKey>>,
}

/// A fault to inject: the next call of `operation` (counted from when it is armed) fails
/// with `code`.
#[derive(Clone, Debug)]
struct Fault {
    operation: &'static str,
    code: String,
    /// Calls of `operation` to let through before this one fails.
    skip: usize,
}

/// An in-memory EC2 and KMS.
#[derive(Default)]
pub struct MemoryCloud {
    world: Mutex<World>,
    calls: Mutex<Vec<&'static str>>,
    faults: Mutex<VecDeque<Fault>>,
    /// Time each call takes, to model a remote service.
    latency: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// Principal ARNs that [`Cloud::caller`] returns, by account.
    callers: Mutex<BTreeMap<String, String>>,
}

/// Counts a call as in flight until dropped.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Operations that change state.
pub const MUTATING: [&str; 4] = [
    "CopyImage",
    "ModifyImageAttribute",
    "ModifySnapshotAttribute",
    "PutKeyPolicy",
];

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in another test thread must not hide this test's own result.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MemoryCloud {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call take `latency` before it returns.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Makes copies stay pending for at most `reads` more reads, then end as `outcome`.
    /// Copies already pending are cut to `reads` too.
    pub fn set_copy_behaviour(&self, reads: usize, outcome: CopyEnding) {
        let mut world = lock(&self.world);
        world.pending_reads = reads;
        world.copy_ending = outcome;
        for left in world.pending.values_mut() {
            *left = (*left).min(reads.max(1));
        }
    }

    /// Images in `scope` whose `amishare:copy-of` tag is `copy_of`.
    pub fn copies_of(&self, scope: &Scope, copy_of: &str) -> Vec<Image> {
        let world = lock(&self.world);
        world
            .images
            .iter()
            .filter(|((s, _), (image, _))| s == scope && image.tag(TAG_COPY_OF) == Some(copy_of))
            .map(|(_, (image, _))| image.clone())
            .collect()
    }

    /// Returns the snapshot with this id, in any account and region.
    pub fn snapshot(&self, snapshot_id: &str) -> Option<Snapshot> {
        let world = lock(&self.world);
        world
            .snapshots
            .iter()
            .find(|((_, id), _)| id == snapshot_id)
            .map(|(_, (s, _))| s.clone())
    }

    /// Returns the largest number of calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }

    /// Adds a key and returns its ARN.
    pub fn add_key(
        &self,
        scope: &Scope,
        key_id: &str,
        alias: Option<&str>,
        manager: KeyManager,
        policy: &str,
    ) -> String {
        let arn = format!(
            "arn:aws:kms:{}:{}:key/{key_id}",
            scope.region, scope.account
        );
        let metadata = KeyMetadata {
            arn: arn.clone(),
            key_id: key_id.to_owned(),
            manager,
            state: "Enabled".to_owned(),
        };
        let key = StoredKey {
            metadata,
            aliases: alias.into_iter().map(str::to_owned).collect(),
            policy: policy.to_owned(),
        };
        lock(&self.world)
            .keys
            .entry(scope.clone())
            .or_default()
            .push(key);
        arn
    }

    pub fn set_key_state(&self, scope: &Scope, key_id: &str, state: &str) {
        let mut world = lock(&self.world);
        if let Some(key) = find_key_mut(&mut world, scope, key_id) {
            key.metadata.state = state.to_owned();
        }
    }

    /// Adds an available image with one snapshot per entry of `snapshots`.
    pub fn add_image(&self, scope: &Scope, image_id: &str, snapshots: &[Snapshot]) {
        let image = Image {
            id: image_id.to_owned(),
            name: Some(format!("image {image_id}")),
            state: "available".to_owned(),
            owner: scope.account.clone(),
            snapshot_ids: snapshots.iter().map(|s| s.id.clone()).collect(),
            state_reason: None,
            tags: Vec::new(),
            creation_date: None,
            deprecation_time: None,
        };
        let mut world = lock(&self.world);
        world.images.insert(
            (scope.clone(), image_id.to_owned()),
            (image, BTreeSet::new()),
        );
        for snapshot in snapshots {
            world.snapshots.insert(
                (scope.clone(), snapshot.id.clone()),
                (snapshot.clone(), BTreeSet::new()),
            );
        }
    }

    /// Sets an image's name, tags and creation date, for selectors.
    pub fn describe_image(
        &self,
        scope: &Scope,
        image_id: &str,
        name: &str,
        tags: &[(&str, &str)],
        created: &str,
    ) {
        if let Some((image, _)) = lock(&self.world)
            .images
            .get_mut(&(scope.clone(), image_id.to_owned()))
        {
            image.name = Some(name.to_owned());
            image.tags = tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            image.creation_date = Some(created.to_owned());
        }
    }

    pub fn set_deprecation_time(&self, scope: &Scope, image_id: &str, time: &str) {
        if let Some((image, _)) = lock(&self.world)
            .images
            .get_mut(&(scope.clone(), image_id.to_owned()))
        {
            image.deprecation_time = Some(time.to_owned());
        }
    }

    pub fn set_image_state(&self, scope: &Scope, image_id: &str, state: &str) {
        if let Some((image, _)) = lock(&self.world)
            .images
            .get_mut(&(scope.clone(), image_id.to_owned()))
        {
            image.state = state.to_owned();
        }
    }

    pub fn set_launch_permissions(&self, scope: &Scope, image_id: &str, entries: &[LaunchEntry]) {
        if let Some((_, launch)) = lock(&self.world)
            .images
            .get_mut(&(scope.clone(), image_id.to_owned()))
        {
            *launch = entries.iter().cloned().collect();
        }
    }

    pub fn set_volume_permissions(&self, scope: &Scope, snapshot_id: &str, accounts: &[&str]) {
        if let Some((_, users)) = lock(&self.world)
            .snapshots
            .get_mut(&(scope.clone(), snapshot_id.to_owned()))
        {
            *users = accounts.iter().map(|a| a.to_string()).collect();
        }
    }

    pub fn launch_set(&self, scope: &Scope, image_id: &str) -> BTreeSet<LaunchEntry> {
        let world = lock(&self.world);
        world
            .images
            .get(&(scope.clone(), image_id.to_owned()))
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }

    pub fn volume_set(&self, scope: &Scope, snapshot_id: &str) -> BTreeSet<String> {
        let world = lock(&self.world);
        world
            .snapshots
            .get(&(scope.clone(), snapshot_id.to_owned()))
            .map(|(_, u)| u.clone())
            .unwrap_or_default()
    }

    pub fn policy(&self, scope: &Scope, key: &str) -> Option<String> {
        let mut world = lock(&self.world);
        find_key_mut(&mut world, scope, key).map(|k| k.policy.clone())
    }

    pub fn set_policy(&self, scope: &Scope, key: &str, policy: &str) {
        let mut world = lock(&self.world);
        if let Some(k) = find_key_mut(&mut world, scope, key) {
            k.policy = policy.to_owned();
        }
    }

    /// Names of the operations called so far, in order.
    pub fn calls(&self) -> Vec<&'static str> {
        lock(&self.calls).clone()
    }

    pub fn mutating_calls(&self) -> usize {
        self.calls().iter().filter(|c| MUTATING.contains(c)).count()
    }

    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    /// Makes the next call of `operation` fail with the AWS error `code`.
    /// Makes [`Cloud::caller`] return `arn` for `account`.
    pub fn set_caller(&self, account: &str, arn: &str) {
        lock(&self.callers).insert(account.to_owned(), arn.to_owned());
    }

    pub fn fail_next(&self, operation: &'static str, code: &str) {
        self.fail_nth(operation, 0, code);
    }

    /// Makes call number `skip` (counting from 0, from now on) of `operation` fail with
    /// the AWS error `code`.
    pub fn fail_nth(&self, operation: &'static str, skip: usize, code: &str) {
        lock(&self.faults).push_back(Fault {
            operation,
            code: code.to_owned(),
            skip,
        });
    }

    async fn enter(&self, operation: &'static str, scope: &Scope) -> AwsResult<()> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        let _in_flight = InFlight(&self.in_flight);
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        lock(&self.calls).push(operation);
        let mut faults = lock(&self.faults);
        if let Some(i) = faults.iter().position(|f| f.operation == operation) {
            if faults[i].skip > 0 {
                faults[i].skip -= 1;
                return Ok(());
            }
            let fault = faults.remove(i).unwrap_or_else(|| unreachable!());
            return Err(AwsError {
                operation,
                scope: scope.clone(),
                code: Some(fault.code.clone()),
                message: format!("injected {}", fault.code),
                request_id: Some(format!("memory-{}", lock(&self.calls).len())),
            });
        }
        Ok(())
    }
}

/// EC2 filter wildcards: `*` matches any characters, `?` exactly one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // matches[j]: whether pattern[..i] matches text[..j], for the current i.
    let mut matches = vec![false; text.len() + 1];
    matches[0] = true;
    for p in &pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => matches[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matches[j - 1],
                c => j > 0 && matches[j - 1] && text[j - 1] == *c,
            };
        }
        matches = next;
    }
    matches[text.len()]
}

/// Counts one read of each pending copy in `scope` and settles those whose time is up.
fn advance_copies(world: &mut World, scope: &Scope) {
    let due: Vec<(Scope, String)> = world
        .pending
        .iter_mut()
        .filter(|((s, _), _)| s == scope)
        .filter_map(|(key, reads)| {
            *reads = reads.saturating_sub(1);
            (*reads == 0).then(|| key.clone())
        })
        .collect();
    for key in due {
        world.pending.remove(&key);
        let outcome = world.copy_ending.clone();
        let Some((image, _)) = world.images.get_mut(&key) else {
            continue;
        };
        match outcome {
            CopyEnding::Available => image.state = "available".to_owned(),
            CopyEnding::Failed(reason) => {
                image.state = "failed".to_owned();
                image.state_reason = Some(reason);
            }
            CopyEnding::WrongKey(arn) => {
                image.state = "available".to_owned();
                let ids = image.snapshot_ids.clone();
                for id in ids {
                    if let Some((snapshot, _)) = world.snapshots.get_mut(&(key.0.clone(), id)) {
                        snapshot.kms_key_id = Some(arn.clone());
                    }
                }
            }
        }
    }
}

fn find_key_mut<'a>(world: &'a mut World, scope: &Scope, key: &str) -> Option<&'a mut StoredKey> {
    world.keys.get_mut(scope)?.iter_mut().find(|k| {
        k.metadata.key_id == key || k.metadata.arn == key || k.aliases.iter().any(|a| a == key)
    })
}

fn not_found(operation: &'static str, scope: &Scope, code: &str, what: &str) -> AwsError {
    AwsError {
        operation,
        scope: scope.clone(),
        code: Some(code.to_owned()),
        message: format!("{what} does not exist"),
        request_id: None,
    }
}

#[async_trait]
impl Cloud for MemoryCloud {
    async fn describe_images(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Image>> {
        self.enter("DescribeImages", scope).await?;
        let mut world = lock(&self.world);
        advance_copies(&mut world, scope);
        Ok(ids
            .iter()
            .filter_map(|id| {
                world
                    .images
                    .get(&(scope.clone(), id.clone()))
                    .map(|(i, _)| i.clone())
            })
            .collect())
    }

    async fn describe_snapshots(&self, scope: &Scope, ids: &[String]) -> AwsResult<Vec<Snapshot>> {
        self.enter("DescribeSnapshots", scope).await?;
        let world = lock(&self.world);
        Ok(ids
            .iter()
            .filter_map(|id| {
                world
                    .snapshots
                    .get(&(scope.clone(), id.clone()))
                    .map(|(s, _)| s.clone())
            })
            .collect())
    }

    async fn launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
    ) -> AwsResult<Vec<LaunchEntry>> {
        const OP: &str = "DescribeImageAttribute";
        self.enter(OP, scope).await?;
        let world = lock(&self.world);
        let (_, launch) = world
            .images
            .get(&(scope.clone(), image_id.to_owned()))
            .ok_or_else(|| not_found(OP, scope, "InvalidAMIID.NotFound", image_id))?;
        Ok(launch.iter().cloned().collect())
    }

    async fn create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
    ) -> AwsResult<Vec<String>> {
        const OP: &str = "DescribeSnapshotAttribute";
        self.enter(OP, scope).await?;
        let world = lock(&self.world);
        let (_, users) = world
            .snapshots
            .get(&(scope.clone(), snapshot_id.to_owned()))
            .ok_or_else(|| not_found(OP, scope, "InvalidSnapshot.NotFound", snapshot_id))?;
        Ok(users.iter().cloned().collect())
    }

    async fn describe_key(&self, scope: &Scope, key: &str) -> AwsResult<KeyMetadata> {
        const OP: &str = "DescribeKey";
        self.enter(OP, scope).await?;
        // A key ARN names its own account and region, wherever the call is made from.
        let target = match key
            .strip_prefix("arn:aws:kms:")
            .and_then(|rest| rest.split_once(':'))
        {
            Some((region, rest)) => Scope::new(rest.split(':').next().unwrap_or_default(), region),
            None => scope.clone(),
        };
        let mut world = lock(&self.world);
        let found = find_key_mut(&mut world, &target, key)
            .ok_or_else(|| not_found(OP, scope, "NotFoundException", key))?;
        Ok(found.metadata.clone())
    }

    async fn get_key_policy(&self, scope: &Scope, key_id: &str) -> AwsResult<String> {
        const OP: &str = "GetKeyPolicy";
        self.enter(OP, scope).await?;
        let mut world = lock(&self.world);
        let key = find_key_mut(&mut world, scope, key_id)
            .ok_or_else(|| not_found(OP, scope, "NotFoundException", key_id))?;
        Ok(key.policy.clone())
    }

    async fn modify_launch_permissions(
        &self,
        scope: &Scope,
        image_id: &str,
        add: &[LaunchEntry],
        remove: &[LaunchEntry],
    ) -> AwsResult<()> {
        const OP: &str = "ModifyImageAttribute";
        self.enter(OP, scope).await?;
        let mut world = lock(&self.world);
        let (_, launch) = world
            .images
            .get_mut(&(scope.clone(), image_id.to_owned()))
            .ok_or_else(|| not_found(OP, scope, "InvalidAMIID.NotFound", image_id))?;
        launch.extend(add.iter().cloned());
        for entry in remove {
            launch.remove(entry);
        }
        Ok(())
    }

    async fn modify_create_volume_permissions(
        &self,
        scope: &Scope,
        snapshot_id: &str,
        add: &[String],
        remove: &[String],
    ) -> AwsResult<()> {
        const OP: &str = "ModifySnapshotAttribute";
        self.enter(OP, scope).await?;
        let mut world = lock(&self.world);
        let (_, users) = world
            .snapshots
            .get_mut(&(scope.clone(), snapshot_id.to_owned()))
            .ok_or_else(|| not_found(OP, scope, "InvalidSnapshot.NotFound", snapshot_id))?;
        users.extend(add.iter().cloned());
        for account in remove {
            users.remove(account);
        }
        Ok(())
    }

    async fn select_images(
        &self,
        scope: &Scope,
        name: Option<&str>,
        tags: &[(String, String)],
    ) -> AwsResult<Vec<Image>> {
        self.enter("DescribeImages", scope).await?;
        let world = lock(&self.world);
        Ok(world
            .images
            .iter()
            .filter(|((s, _), (image, _))| {
                s == scope
                    && name.is_none_or(|pattern| {
                        image
                            .name
                            .as_deref()
                            .is_some_and(|n| wildcard_match(pattern, n))
                    })
                    && tags.iter().all(|(k, v)| image.tag(k) == Some(v.as_str()))
            })
            .map(|(_, (image, _))| image.clone())
            .collect())
    }

    async fn find_copies(&self, scope: &Scope, copy_of: &[String]) -> AwsResult<Vec<Image>> {
        self.enter("DescribeImages", scope).await?;
        let mut world = lock(&self.world);
        advance_copies(&mut world, scope);
        Ok(world
            .images
            .iter()
            .filter(|((s, _), (image, _))| {
                s == scope
                    && image
                        .tag(TAG_COPY_OF)
                        .is_some_and(|t| copy_of.iter().any(|c| c == t))
            })
            .map(|(_, (image, _))| image.clone())
            .collect())
    }

    async fn copy_image(&self, scope: &Scope, request: &CopyRequest) -> AwsResult<String> {
        const OP: &str = "CopyImage";
        self.enter(OP, scope).await?;
        let mut world = lock(&self.world);
        let source_key = (request.source.clone(), request.source_image.clone());
        let (source, _) =
            world.images.get(&source_key).cloned().ok_or_else(|| {
                not_found(OP, scope, "InvalidAMIID.NotFound", &request.source_image)
            })?;
        // Another account may copy a shared image only with createVolumePermission on
        // every snapshot, else EC2 fails the copy with this message.
        if request.source.account != scope.account {
            let allowed = source.snapshot_ids.iter().all(|id| {
                world
                    .snapshots
                    .get(&(request.source.clone(), id.clone()))
                    .is_some_and(|(_, users)| users.contains(&scope.account))
            });
            if !allowed {
                return Err(AwsError {
                    operation: OP,
                    scope: scope.clone(),
                    code: Some("InvalidRequest".into()),
                    message: "You do not have permission to access the storage of this ami".into(),
                    request_id: None,
                });
            }
        }
        world.copies_made += 1;
        let n = world.copies_made;
        let id = format!("ami-{:017x}", 0xc0_0000_0000 + n);
        let mut snapshot_ids = Vec::new();
        for (i, _) in source.snapshot_ids.iter().enumerate() {
            let snapshot_id = format!("snap-{:017x}", 0xc0_0000_0000 + n * 100 + i);
            let snapshot = Snapshot {
                id: snapshot_id.clone(),
                encrypted: true,
                kms_key_id: Some(request.key_arn.clone()),
            };
            world.snapshots.insert(
                (scope.clone(), snapshot_id.clone()),
                (snapshot, BTreeSet::new()),
            );
            snapshot_ids.push(snapshot_id);
        }
        let image = Image {
            id: id.clone(),
            name: Some(request.name.clone()),
            state: "pending".to_owned(),
            owner: scope.account.clone(),
            snapshot_ids,
            state_reason: None,
            tags: request.tags.clone(),
            creation_date: None,
            deprecation_time: None,
        };
        world
            .images
            .insert((scope.clone(), id.clone()), (image, BTreeSet::new()));
        let reads = world.pending_reads.max(1);
        world.pending.insert((scope.clone(), id.clone()), reads);
        Ok(id)
    }

    async fn put_key_policy(&self, scope: &Scope, key_id: &str, policy: &str) -> AwsResult<()> {
        const OP: &str = "PutKeyPolicy";
        self.enter(OP, scope).await?;
        if serde_json::from_str::<serde_json::Value>(policy).is_err() {
            return Err(AwsError {
                operation: OP,
                scope: scope.clone(),
                code: Some("MalformedPolicyDocumentException".into()),
                message: "policy is not valid JSON".into(),
                request_id: None,
            });
        }
        let mut world = lock(&self.world);
        let key = find_key_mut(&mut world, scope, key_id)
            .ok_or_else(|| not_found(OP, scope, "NotFoundException", key_id))?;
        if key.metadata.manager == KeyManager::Aws {
            return Err(AwsError {
                operation: OP,
                scope: scope.clone(),
                code: Some("AccessDeniedException".into()),
                message: "the policy of an AWS managed key cannot be changed".into(),
                request_id: None,
            });
        }
        key.policy = policy.to_owned();
        Ok(())
    }

    fn caller(&self, scope: &Scope) -> Option<String> {
        lock(&self.callers).get(&scope.account).cloned()
    }
}

//! An object's whole life after its first upload: versions that race, keys
//! that collide, outputs a new manifest no longer lists, and deletes.
//!
//! The rules, each enforced here:
//! - **Only the current version publishes.** The source is checked (HEAD)
//!   before anything is written: an older version than the bucket's stops
//!   there ([`Skip::Superseded`]; the newer version's own event makes its
//!   outputs). It is checked again after the manifest is written: if the
//!   source changed or went meanwhile, the key is reconciled again with
//!   what is there now, so the last writer is always the current version.
//! - **No output is another source's.** Unless the key template is
//!   distinct by construction, each output key not listed in this source's
//!   own manifest is checked before writing: an object there that belongs
//!   to another source (its `mediaflow-source-key` metadata) fails this
//!   source permanently, naming both keys, and nothing is written.
//! - **The manifest describes what exists.** Outputs are written before the
//!   manifest. When a template without `{hash}` would overwrite the
//!   previous version's outputs in place, the previous manifest is removed
//!   first. Outputs the previous manifest listed and the new one does not
//!   are deleted after the new manifest is in place.
//! - **Deletes remove exactly the source's outputs.** A removal event
//!   first checks the source: if the key exists again (a newer upload),
//!   nothing is removed and that version is made current instead. Otherwise
//!   the outputs listed in its manifest are recorded in
//!   `{prefix}retired/{key}.json`, the manifest is deleted (readers stop
//!   seeing the source at once), then the outputs, the failure record and
//!   finally the retired record. A removal that fails part-way is retried
//!   and finishes from the retired record; a repeated removal finds
//!   nothing and is a no-op.

use super::{failed, Outcome, Pipeline, Skip, META_OUTPUT, META_SOURCE_KEY};
use crate::error::{Cause, ObjectError, Retry};
use crate::event::SourceObject;
use bytes::Bytes;
use mediaflow_engine::{failure_key, manifest_key, MediaError};
use mediaflow_store::{escape_key, ObjectInfo, PutOptions};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;
use std::collections::BTreeSet;

/// `{prefix}retired/{key}.json`: outputs that no manifest lists any more
/// and that are being (or could not yet be) deleted.
pub fn retired_key(prefix: &str, source_key: &str) -> String {
    format!("{prefix}retired/{source_key}.json")
}

/// The previous manifest of a source, as far as the lifecycle needs it.
#[derive(Debug, Default)]
pub(super) struct Previous {
    /// Whether a manifest exists.
    pub exists: bool,
    /// The source ETag and plan it was made from.
    pub etag: Option<String>,
    pub plan: Option<String>,
    /// Every output key it lists (variants, renditions).
    pub keys: BTreeSet<String>,
}

/// Every output key a manifest (image or video) lists.
fn listed_keys(manifest: &Value) -> BTreeSet<String> {
    ["variants", "renditions"]
        .iter()
        .filter_map(|field| manifest[field].as_array())
        .flatten()
        .filter_map(|o| o["key"].as_str().map(str::to_string))
        .collect()
}

/// The metadata value of a source key (see [`super::META_SOURCE_KEY`]).
pub(super) fn encoded_source_key(key: &str) -> String {
    utf8_percent_encode(key, NON_ALPHANUMERIC).to_string()
}

/// Whether `info` describes the version whose ETag (and version id, when
/// both are known) is given.
pub(super) fn same_version(info: &ObjectInfo, etag: Option<&str>, version: Option<&str>) -> bool {
    info.etag.as_deref() == etag
        && match (info.version_id.as_deref(), version) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
}

impl Pipeline {
    /// The source as it is now (HEAD), `None` when it is gone.
    pub(super) async fn source_now(
        &self,
        object: &SourceObject,
        name: &str,
    ) -> Result<Option<ObjectInfo>, Outcome> {
        self.store
            .head(&object.bucket, &object.key)
            .await
            .map_err(|e| failed(name, Cause::during("checking the source", e)))
    }

    /// A JSON document the pipeline wrote (manifest or retired record), or
    /// `None` when there is none.
    async fn read_json(&self, key: &str, name: &str) -> Result<Option<Value>, Outcome> {
        let c = &self.config;
        match self.store.get(&c.output_bucket, key, 16 << 20).await {
            Ok(o) => serde_json::from_slice(&o.body).map(Some).map_err(|e| {
                failed(
                    name,
                    MediaError::internal(format!("{} is not JSON: {e}", escape_key(key))),
                )
            }),
            Err(mediaflow_store::StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(failed(
                name,
                Cause::during(&format!("reading {}", escape_key(key)), e),
            )),
        }
    }

    /// The source's current manifest, with the keys it lists.
    pub(super) async fn previous(
        &self,
        object: &SourceObject,
        name: &str,
    ) -> Result<Previous, Outcome> {
        let key = manifest_key(&self.config.output_prefix, &object.key);
        Ok(match self.read_json(&key, name).await? {
            None => Previous::default(),
            Some(m) => Previous {
                exists: true,
                etag: m["source"]["etag"].as_str().map(str::to_string),
                plan: m["plan_fingerprint"].as_str().map(str::to_string),
                keys: listed_keys(&m),
            },
        })
    }

    /// Keys a retired record lists (outputs whose deletion did not finish).
    async fn retired(
        &self,
        object: &SourceObject,
        name: &str,
    ) -> Result<BTreeSet<String>, Outcome> {
        let key = retired_key(&self.config.output_prefix, &object.key);
        Ok(self
            .read_json(&key, name)
            .await?
            .map(|r| {
                r["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Writes the retired record listing `keys`.
    async fn write_retired(
        &self,
        object: &SourceObject,
        name: &str,
        keys: &BTreeSet<String>,
    ) -> Result<(), Outcome> {
        let c = &self.config;
        let key = retired_key(&c.output_prefix, &object.key);
        let body = serde_json::json!({
            "source": { "bucket": object.bucket, "key": object.key },
            "keys": keys,
        });
        let options = PutOptions {
            content_type: Some("application/json".into()),
            cache_control: Some(super::MANIFEST_CACHE_CONTROL.into()),
            metadata: [(META_OUTPUT.to_string(), "1".to_string())].into(),
        };
        self.store
            .put(
                &c.output_bucket,
                &key,
                Bytes::from(serde_json::to_vec_pretty(&body).expect("JSON")),
                &options,
            )
            .await
            .map(drop)
            .map_err(|e| {
                failed(
                    name,
                    Cause::during(&format!("writing {}", escape_key(&key)), e),
                )
            })
    }

    /// Deletes `keys` (concurrently); the first error, if any.
    async fn delete_keys(&self, keys: &BTreeSet<String>, name: &str) -> Result<(), ObjectError> {
        let bucket = &self.config.output_bucket;
        let deletes = keys.iter().map(|key| async move {
            self.store.delete(bucket, key).await.map_err(|e| {
                ObjectError::new(
                    name,
                    Cause::during(&format!("deleting {}", escape_key(key)), e),
                )
            })
        });
        futures::future::join_all(deletes)
            .await
            .into_iter()
            .collect::<Result<Vec<()>, _>>()
            .map(drop)
    }

    /// Fails with both keys named when an output key holds another
    /// source's object (or an object mediaflow did not write). Keys the
    /// previous manifest of this source lists are its own.
    pub(super) async fn check_collisions(
        &self,
        object: &SourceObject,
        name: &str,
        keys: &BTreeSet<String>,
        previous: &Previous,
    ) -> Result<(), Outcome> {
        if self.plan.keys().distinct_by_construction() {
            return Ok(());
        }
        let ours = encoded_source_key(&object.key);
        let bucket = &self.config.output_bucket;
        let heads = keys
            .iter()
            .filter(|k| !previous.keys.contains(*k))
            .map(|key| async move { (key, self.store.head(bucket, key).await) });
        for (key, head) in futures::future::join_all(heads).await {
            let info = head.map_err(|e| {
                failed(
                    name,
                    Cause::during(&format!("checking {}", escape_key(key)), e),
                )
            })?;
            let Some(info) = info else { continue };
            let owner = info.metadata.get(META_SOURCE_KEY);
            if owner == Some(&ours) {
                continue;
            }
            let other = match owner {
                Some(enc) => format!(
                    "the output of source {}",
                    escape_key(&percent_encoding::percent_decode_str(enc).decode_utf8_lossy())
                ),
                None if info.metadata.contains_key(META_OUTPUT) => {
                    "the output of another source".to_string()
                }
                None => "an object mediaflow did not write".to_string(),
            };
            return Err(Outcome::Failed(ObjectError::new(
                name,
                Cause::new(
                    mediaflow_engine::ErrorKind::Collision,
                    format!(
                        "output key {} of source {} is already {other}; the [output] keys template {:?} maps both sources to it, so nothing was written (make the template include {{key}}, as the default does)",
                        escape_key(key),
                        escape_key(&object.key),
                        self.plan.keys().as_str(),
                    ),
                ),
            )));
        }
        Ok(())
    }

    /// After a new manifest is in place: deletes what the previous manifest
    /// (and any retired record) listed that the new one does not. A
    /// deletion that fails is recorded in the retired record, finished by
    /// the next publish or removal of this key, and logged; the new
    /// outputs are complete either way.
    pub(super) async fn remove_stale(
        &self,
        object: &SourceObject,
        name: &str,
        previous: &Previous,
        keys: &BTreeSet<String>,
    ) -> usize {
        // An unreadable retired record only delays its own cleanup.
        let retired: BTreeSet<String> = self.retired(object, name).await.unwrap_or_default();
        let stale: BTreeSet<String> = previous
            .keys
            .union(&retired)
            .filter(|k| !keys.contains(*k))
            .cloned()
            .collect();
        let record = retired_key(&self.config.output_prefix, &object.key);
        if stale.is_empty() {
            if !retired.is_empty() {
                let _ = self.store.delete(&self.config.output_bucket, &record).await;
            }
            return 0;
        }
        match self.delete_keys(&stale, name).await {
            Ok(()) => {
                if !retired.is_empty() {
                    let _ = self.store.delete(&self.config.output_bucket, &record).await;
                }
                stale.len()
            }
            Err(e) => {
                let recorded = self.write_retired(object, name, &stale).await.is_ok();
                tracing::warn!(
                    object = %name,
                    stale = stale.len(),
                    recorded,
                    "outputs the new manifest no longer lists were not all deleted ({e}); the next upload or delete of this key finishes it"
                );
                0
            }
        }
    }

    /// A removal event (Delete, DeleteMarkerCreated): see the module docs.
    /// `Ok(None)` means the key exists again and must be made current;
    /// `force` is set when this removal deleted outputs before it found the
    /// key again (an upload of the same bytes may have written them and a
    /// manifest that now lists deleted outputs: it must be redone).
    pub(super) async fn remove(
        &self,
        object: &SourceObject,
        name: &str,
        force: &mut bool,
    ) -> Result<Option<Outcome>, Outcome> {
        if self.is_output_key(&object.bucket, &object.key) {
            return Err(Outcome::Skipped(Skip::OutputKey));
        }
        // A key whose outputs cannot exist (over S3's key length).
        if self.output_key_limit(&object.key).is_some() {
            return Ok(Some(Outcome::Skipped(Skip::NothingToRemove)));
        }
        if self.source_now(object, name).await?.is_some() {
            return Ok(None);
        }
        let c = &self.config;
        let previous = self.previous(object, name).await?;
        let mut keys = self.retired(object, name).await?;
        keys.extend(previous.keys.iter().cloned());
        let manifest = manifest_key(&c.output_prefix, &object.key);
        let failure = failure_key(&c.output_prefix, &object.key);
        let had_failure = self
            .store
            .head(&c.output_bucket, &failure)
            .await
            .map_err(|e| failed(name, Cause::during("checking the failure record", e)))?
            .is_some();
        if !previous.exists && keys.is_empty() && !had_failure {
            return Ok(Some(Outcome::Skipped(Skip::NothingToRemove)));
        }
        if previous.exists {
            // Recorded first, so a removal cut short finishes on retry
            // even though the manifest is already gone.
            self.write_retired(object, name, &keys).await?;
            self.store
                .delete(&c.output_bucket, &manifest)
                .await
                .map_err(|e| {
                    failed(
                        name,
                        Cause::during(&format!("deleting {}", escape_key(&manifest)), e),
                    )
                })?;
        }
        self.delete_keys(&keys, name).await.map_err(|e| {
            Outcome::Failed(ObjectError {
                retry: Retry::Retryable,
                ..e
            })
        })?;
        for key in [failure, retired_key(&c.output_prefix, &object.key)] {
            self.store
                .delete(&c.output_bucket, &key)
                .await
                .map_err(|e| {
                    failed(
                        name,
                        Cause::during(&format!("deleting {}", escape_key(&key)), e),
                    )
                })?;
        }
        // Uploaded again while this ran: make that version current, even
        // if a manifest says it is done (its outputs may be the ones just
        // deleted).
        if self.source_now(object, name).await?.is_some() {
            *force = true;
            return Ok(None);
        }
        Ok(Some(Outcome::Removed {
            manifest_key: manifest,
            outputs: keys.len(),
        }))
    }
}

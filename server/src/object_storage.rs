//! Photos in S3-compatible object storage (MinIO, Ceph, Alibaba OSS, Tencent COS, Huawei OBS,
//! AWS) with `--photos s3://BUCKET/PREFIX`: for when the photos outgrow one machine's disk or
//! several server instances share them. The endpoint, region and credentials come from the
//! usual environment (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`); requests are path-style (`ENDPOINT/BUCKET/KEY`), which every
//! S3-compatible server accepts, and a plain `http://` endpoint (a MinIO on the office LAN) is
//! allowed when it is the one named. Keys are laid out as in the photo folder:
//! `PREFIX/ab/abcdef….jpg` and `….thumb.jpg`.

use std::sync::{Arc, OnceLock};

use object_store::aws::AmazonS3Builder;
use object_store::aws::AmazonS3ConfigKey::Client;
use object_store::path::Path as Key;
use object_store::{ClientConfigKey, RetryConfig};
use object_store::{ObjectStore, ObjectStoreExt};

use crate::photos::{PhotoStorage, Variant};

/// The photo calls are blocking (they run on the blocking pool, beside the checks of the
/// picture); the object store's requests run on a small runtime of their own, which any
/// thread may wait on, and which lives as long as the process.
fn runtime() -> std::io::Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("xuncha-object-store")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| std::io::Error::other(e.clone()))
}

/// Photos in a bucket.
#[derive(Clone, Debug)]
pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// `s3://bucket/prefix`, for messages.
    url: String,
}

/// `--photos`: an `s3://BUCKET/PREFIX` address, checked as the command line reads it.
pub fn parse_url(url: &str) -> Result<String, String> {
    bucket_and_prefix(url).map(|_| url.to_owned())
}

/// The bucket and key prefix of `s3://BUCKET/PREFIX`.
fn bucket_and_prefix(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| format!("{url:?} is not an s3://BUCKET/PREFIX address"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let valid = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'.'));
    if !valid {
        return Err(format!(
            "{bucket:?} is not a bucket name (3 to 63 lowercase letters, digits, '-' or '.')"
        ));
    }
    Ok((bucket.to_owned(), prefix.trim_matches('/').to_owned()))
}

impl S3Storage {
    /// The bucket and prefix of `url` (`s3://BUCKET/PREFIX`), with the endpoint and
    /// credentials of the environment. Nothing is sent until [`S3Storage::check`].
    pub fn open(url: &str) -> Result<S3Storage, String> {
        let (bucket, prefix) = bucket_and_prefix(url)?;
        // Request signing and TLS both use ring, the one crypto stack of the project.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A bucket that stops answering fails a photo request within about half a minute
        // (the phone tries again later) instead of holding an upload slot for minutes.
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .with_config(Client(ClientConfigKey::Timeout), "30s")
            .with_config(Client(ClientConfigKey::ConnectTimeout), "5s")
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(30),
                ..RetryConfig::default()
            });
        let endpoint = ["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]
            .iter()
            .find_map(|k| std::env::var(k).ok());
        if endpoint.is_some_and(|e| e.starts_with("http://")) {
            builder = builder.with_allow_http(true);
        }
        let store = builder
            .build()
            .map_err(|e| format!("对象存储不可用 / object storage {url}: {e}"))?;
        Ok(S3Storage {
            store: Arc::new(store),
            prefix,
            url: url.to_owned(),
        })
    }

    /// Whether the bucket answers (credentials right, bucket there): one listing request.
    pub fn check(&self) -> Result<(), String> {
        let store = self.store.clone();
        let prefix = (!self.prefix.is_empty()).then(|| Key::from(self.prefix.as_str()));
        let runtime = runtime().map_err(|e| e.to_string())?;
        // On a thread of its own: the caller may be inside an async task (tests, start-up).
        std::thread::scope(|s| {
            s.spawn(|| {
                runtime.block_on(async move { store.list_with_delimiter(prefix.as_ref()).await })
            })
            .join()
        })
        .map_err(|_| {
            format!(
                "对象存储不可用 / object storage {}: the check failed",
                self.url
            )
        })?
        .map(|_| ())
        .map_err(|e| format!("对象存储不可用 / object storage {}: {e}", self.url))
    }

    fn key(&self, sha256: &str, variant: Variant) -> Key {
        let suffix = match variant {
            Variant::Full => "jpg",
            Variant::Thumbnail => "thumb.jpg",
        };
        let name = format!("{}/{sha256}.{suffix}", &sha256[..2]);
        if self.prefix.is_empty() {
            Key::from(name)
        } else {
            Key::from(format!("{}/{name}", self.prefix))
        }
    }
}

impl S3Storage {
    /// Where the chunks of an unfinished upload live: `PREFIX/uploads/SHA/`.
    fn upload_dir(&self, sha256: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(format!("uploads/{sha256}"))
        } else {
            Key::from(format!("{}/uploads/{sha256}", self.prefix))
        }
    }

    /// A chunk's key: its offset, zero-padded so that names sort as offsets do.
    fn chunk_key(&self, sha256: &str, offset: u64) -> Key {
        Key::from(format!("{}/{offset:020}", self.upload_dir(sha256)))
    }

    fn listed(&self, sha256: &str) -> std::io::Result<Vec<object_store::ObjectMeta>> {
        let (store, dir) = (self.store.clone(), self.upload_dir(sha256));
        runtime()?
            .block_on(async move { store.list_with_delimiter(Some(&dir)).await })
            .map(|listed| listed.objects)
            .map_err(std::io::Error::other)
    }
}

impl crate::photos::SharedUploads for S3Storage {
    fn chunks(&self, sha256: &str) -> std::io::Result<Vec<(u64, u64)>> {
        let mut chunks: Vec<(u64, u64)> = self
            .listed(sha256)?
            .into_iter()
            .filter_map(|m| {
                let offset = m.location.filename()?.parse::<u64>().ok()?;
                Some((offset, m.size))
            })
            .collect();
        chunks.sort_unstable();
        Ok(chunks)
    }

    fn put_chunk(
        &self,
        sha256: &str,
        offset: u64,
        bytes: axum::body::Bytes,
    ) -> std::io::Result<()> {
        let (store, key) = (self.store.clone(), self.chunk_key(sha256, offset));
        let payload = object_store::PutPayload::from(bytes);
        runtime()?
            .block_on(async move { store.put(&key, payload).await })
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    fn get_chunk(&self, sha256: &str, offset: u64) -> std::io::Result<axum::body::Bytes> {
        let (store, key) = (self.store.clone(), self.chunk_key(sha256, offset));
        runtime()?
            .block_on(async move { store.get(&key).await?.bytes().await })
            .map_err(std::io::Error::other)
    }

    fn unfinished(&self) -> std::io::Result<Vec<crate::photos::Unfinished>> {
        use futures_util::TryStreamExt;
        let uploads = if self.prefix.is_empty() {
            Key::from("uploads")
        } else {
            Key::from(format!("{}/uploads", self.prefix))
        };
        let store = self.store.clone();
        let chunks: Vec<object_store::ObjectMeta> = runtime()?
            .block_on(async move { store.list(Some(&uploads)).try_collect().await })
            .map_err(std::io::Error::other)?;
        // By photo (the folder above each chunk): the bytes held and the latest chunk's time.
        let mut by_photo: std::collections::BTreeMap<String, (u64, chrono::DateTime<chrono::Utc>)> =
            std::collections::BTreeMap::new();
        for chunk in chunks {
            let mut parts = chunk.location.as_ref().rsplit('/').skip(1);
            let Some(sha256) = parts.next() else { continue };
            let held = by_photo
                .entry(sha256.to_owned())
                .or_insert((0, chunk.last_modified));
            held.0 += chunk.size;
            held.1 = held.1.max(chunk.last_modified);
        }
        let now = chrono::Utc::now();
        Ok(by_photo
            .into_iter()
            .map(|(sha256, (bytes, last))| crate::photos::Unfinished {
                sha256,
                bytes,
                idle: (now - last).to_std().ok(),
            })
            .collect())
    }

    fn remove_chunks(&self, sha256: &str) -> std::io::Result<()> {
        for meta in self.listed(sha256)? {
            let store = self.store.clone();
            runtime()?
                .block_on(async move { store.delete(&meta.location).await })
                .map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

impl PhotoStorage for S3Storage {
    fn put(&self, sha256: &str, variant: Variant, bytes: &[u8]) -> std::io::Result<()> {
        let (store, key) = (self.store.clone(), self.key(sha256, variant));
        let payload = object_store::PutPayload::from(bytes.to_vec());
        // One PUT: the object appears whole or not at all.
        runtime()?
            .block_on(async move { store.put(&key, payload).await })
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    fn get(&self, sha256: &str, variant: Variant) -> std::io::Result<Option<Vec<u8>>> {
        let (store, key) = (self.store.clone(), self.key(sha256, variant));
        runtime()?
            .block_on(async move {
                match store.get(&key).await {
                    Ok(found) => found.bytes().await.map(|b| Some(b.to_vec())),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .map_err(std::io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn addresses_name_a_bucket_and_an_optional_prefix() {
        assert_eq!(
            bucket_and_prefix("s3://xuncha-photos/city/district-7/").unwrap(),
            ("xuncha-photos".into(), "city/district-7".into())
        );
        assert_eq!(
            bucket_and_prefix("s3://photos").unwrap(),
            ("photos".into(), String::new())
        );
        for bad in ["photos", "s3://", "s3://Photos/x", "s3://ab", "http://x/y"] {
            assert!(bucket_and_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_laid_out_as_in_the_photo_folder() {
        let s = S3Storage::open("s3://photos/a/b").unwrap();
        let sha = "ab".repeat(32);
        assert_eq!(
            s.key(&sha, Variant::Full).as_ref(),
            format!("a/b/ab/{sha}.jpg")
        );
        assert_eq!(
            s.key(&sha, Variant::Thumbnail).as_ref(),
            format!("a/b/ab/{sha}.thumb.jpg")
        );
    }
}

//! Builds the `object_store` client a [`crate::config::Backend`] names.
//!
//! Building never touches the network: a broker whose object store is down
//! at startup still starts, and its uploads wait and retry (KIP-405's
//! remote log manager behaves the same).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, ObjectStore, RetryConfig};

use crate::config::{Backend, S3Config};
use crate::error::{Error, Result};

pub(crate) fn build(backend: &Backend) -> Result<Arc<dyn ObjectStore>> {
    match backend {
        Backend::Local { root } => {
            std::fs::create_dir_all(root).map_err(|source| Error::Io { path: root.clone(), source })?;
            let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| Error::Setup(format!("{}: {e}", root.display())))?;
            // fsync: the manifest must not outlive the files it lists across
            // a crash. Cleanup: deleting a partition's last segment removes
            // its now empty directories.
            Ok(Arc::new(fs.with_fsync(true).with_automatic_cleanup(true)))
        }
        Backend::S3(c) => {
            install_crypto();
            Ok(Arc::new(s3(c)?.build().map_err(|e| Error::Setup(e.to_string()))?))
        }
    }
}

/// Makes ring rustls's process-wide default provider, which reqwest's
/// rustls (built without a provider of its own, see the workspace
/// Cargo.toml) uses for HTTPS to S3. Idempotent: a provider already
/// installed, ring or another, is left in place.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn s3(c: &S3Config) -> Result<AmazonS3Builder> {
    if c.bucket.is_empty() {
        return Err(Error::Setup("an S3 bucket name is needed".into()));
    }
    let mut options = ClientOptions::new();
    if let Some(ms) = c.request_timeout_ms {
        options = options.with_timeout(Duration::from_millis(ms));
    }
    let mut b = from_env(c.credentials.is_some())
        .with_bucket_name(&c.bucket)
        .with_client_options(options)
        // The store retries each request itself, with its own bounds and
        // its own idea of what is transient; a second layer here would
        // multiply the attempts.
        .with_retry(RetryConfig { max_retries: 0, ..RetryConfig::default() });
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    // The SDKs' order: settings, the environment, then the profile's files.
    let profile = crate::profile::load(env);
    let env_region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    if let Some(region) = c.region.as_ref().or(env_region.as_ref()).or(profile.region.as_ref()) {
        b = b.with_region(region);
    }
    if c.credentials.is_none()
        && env("AWS_ACCESS_KEY_ID").is_none()
        && let (Some(id), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key)
    {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(token) = &profile.session_token {
            b = b.with_token(token);
        }
    }
    // Bucket names with dots break TLS under virtual hosts (the wildcard
    // certificate covers one label), so the AWS SDKs fall back to paths too.
    let path_style = c.path_style_access.unwrap_or(c.endpoint.is_some() || c.bucket.contains('.'));
    b = b.with_virtual_hosted_style_request(!path_style);
    if let Some(endpoint) = &c.endpoint {
        let endpoint = endpoint.trim_end_matches('/');
        let (scheme, rest) = endpoint
            .split_once("://")
            .filter(|(s, rest)| matches!(*s, "http" | "https") && !rest.is_empty())
            .ok_or_else(|| Error::Setup(format!("endpoint {endpoint} is not an http:// or https:// URL")))?;
        // object_store takes a virtual-host endpoint with the bucket in it;
        // the AWS SDK (and so Aiven's setting) takes it without.
        let endpoint = if path_style { endpoint.to_string() } else { format!("{scheme}://{}.{rest}", c.bucket) };
        b = b.with_endpoint(endpoint).with_allow_http(scheme == "http");
    }
    if let Some(creds) = &c.credentials {
        b = b.with_access_key_id(&creds.access_key_id).with_secret_access_key(&creds.secret_access_key);
        if let Some(token) = &creds.session_token {
            b = b.with_token(token);
        }
    }
    Ok(b)
}

/// `AmazonS3Builder::from_env`, less the environment's credentials when
/// static ones are configured: a stray `AWS_SESSION_TOKEN` would otherwise
/// be sent with a key pair it does not belong to.
fn from_env(static_credentials: bool) -> AmazonS3Builder {
    const CREDENTIALS: [&str; 3] = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"];
    let mut b = AmazonS3Builder::new();
    for (key, value) in std::env::vars_os() {
        let (Some(key), Some(value)) = (key.to_str(), value.to_str()) else { continue };
        if !key.starts_with("AWS_") || (static_credentials && CREDENTIALS.contains(&key)) {
            continue;
        }
        if let Ok(config_key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            b = b.with_config(config_key, value);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticCredentials;

    fn config(endpoint: Option<&str>, path_style: Option<bool>, bucket: &str) -> S3Config {
        S3Config {
            bucket: bucket.into(),
            region: Some("eu-west-1".into()),
            endpoint: endpoint.map(String::from),
            path_style_access: path_style,
            credentials: Some(StaticCredentials { access_key_id: "id".into(), secret_access_key: "s".into(), session_token: None }),
            request_timeout_ms: None,
        }
    }

    fn endpoint_and_style(c: &S3Config) -> (Option<String>, Option<String>) {
        let b = s3(c).unwrap();
        (b.get_config_value(&AmazonS3ConfigKey::Endpoint), b.get_config_value(&AmazonS3ConfigKey::VirtualHostedStyleRequest))
    }

    #[test]
    fn path_style_and_virtual_host_endpoints() {
        let s = |v: &str| Some(v.to_string());
        // An S3-compatible server: paths unless told otherwise; a virtual
        // host puts the bucket in front of the host, as the AWS SDK does.
        assert_eq!(endpoint_and_style(&config(Some("http://minio:9000/"), None, "b")), (s("http://minio:9000"), s("false")));
        assert_eq!(
            endpoint_and_style(&config(Some("https://s3.example.com"), Some(false), "b")),
            (s("https://b.s3.example.com"), s("true"))
        );
        // AWS: virtual hosts, unless the bucket name has dots.
        assert_eq!(endpoint_and_style(&config(None, None, "b")), (None, s("true")));
        assert_eq!(endpoint_and_style(&config(None, None, "b.example")), (None, s("false")));
        for bad in ["minio:9000", "ftp://x", "http://"] {
            assert!(matches!(s3(&config(Some(bad), None, "b")), Err(Error::Setup(_))), "{bad}");
        }
        assert!(matches!(s3(&config(None, None, "")), Err(Error::Setup(_))));
        assert!(build(&Backend::S3(config(Some("http://127.0.0.1:1"), None, "b"))).is_ok(), "building makes no request");
        // HTTPS: reqwest's rustls has no provider of its own; build installs ring.
        assert!(build(&Backend::S3(config(Some("https://127.0.0.1:1"), None, "b"))).is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}

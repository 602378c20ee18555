//! The AWS shared files, as the AWS SDKs read them for a profile:
//! credentials from `~/.aws/credentials` (or `AWS_SHARED_CREDENTIALS_FILE`)
//! and region from `~/.aws/config` (or `AWS_CONFIG_FILE`), for the profile
//! `AWS_PROFILE` names or `default`. object_store reads the environment, web
//! identity, ECS and instance metadata, not these files; the SDKs look at
//! them after the environment and before the rest, and so does
//! `backend::s3`.

use std::path::PathBuf;

/// What a profile says; any part may be missing.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    pub region: Option<String>,
}

/// The profile `env` (the environment) points at; files that do not exist
/// or do not parse give nothing.
pub(crate) fn load(env: impl Fn(&str) -> Option<String>) -> Profile {
    let name = env("AWS_PROFILE").filter(|p| !p.is_empty()).unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from);
    let file = |var: &str, default: &str| env(var).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)));
    let read = |path: Option<PathBuf>| path.and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
    let credentials = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"));
    let config = read(file("AWS_CONFIG_FILE", "config"));
    // The config file names profiles `[profile x]`, except `[default]`.
    let config_section = if name == "default" { name.clone() } else { format!("profile {name}") };
    let value = |key: &str| section_value(&credentials, &name, key).or_else(|| section_value(&config, &config_section, key));
    Profile {
        access_key_id: value("aws_access_key_id"),
        secret_access_key: value("aws_secret_access_key"),
        session_token: value("aws_session_token"),
        region: section_value(&config, &config_section, "region"),
    }
}

/// `key = value` in `[section]` of an INI text, as the AWS files are written.
fn section_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if let Some((k, v)) = line.split_once('=')
            && inside
            && k.trim() == key
        {
            return Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_from_the_shared_files() {
        let dir = tempfile::tempdir().unwrap();
        let aws = dir.path().join(".aws");
        std::fs::create_dir(&aws).unwrap();
        std::fs::write(
            aws.join("credentials"),
            "# keys\n[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key=secret-default\n\n[dev]\naws_access_key_id=AKDEV\naws_secret_access_key = secret-dev\naws_session_token = tok\n",
        )
        .unwrap();
        std::fs::write(aws.join("config"), "[default]\nregion = eu-west-1\n[profile dev]\nregion=us-east-2\n[profile other]\naws_access_key_id=AKCONF\naws_secret_access_key=s\n").unwrap();
        let home = dir.path().to_string_lossy().to_string();
        let env = |vars: &'static [(&'static str, &'static str)]| {
            let home = home.clone();
            move |k: &str| if k == "HOME" { Some(home.clone()) } else { vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()) }
        };
        let d = load(env(&[]));
        assert_eq!(
            (d.access_key_id.as_deref(), d.secret_access_key.as_deref(), d.session_token, d.region.as_deref()),
            (Some("AKDEFAULT"), Some("secret-default"), None, Some("eu-west-1"))
        );
        let dev = load(env(&[("AWS_PROFILE", "dev")]));
        assert_eq!(
            (dev.access_key_id.as_deref(), dev.session_token.as_deref(), dev.region.as_deref()),
            (Some("AKDEV"), Some("tok"), Some("us-east-2"))
        );
        // Keys may live in the config file too.
        assert_eq!(load(env(&[("AWS_PROFILE", "other")])).access_key_id.as_deref(), Some("AKCONF"));
        assert_eq!(load(env(&[("AWS_PROFILE", "nope")])), Profile::default());
        // Files named by the environment win; missing files are nothing.
        assert_eq!(load(env(&[("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"), ("AWS_CONFIG_FILE", "/nonexistent")])), Profile::default());
    }
}

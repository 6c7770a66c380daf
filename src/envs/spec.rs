//! The environment spec: everything that picks and configures the environment
//! a server serves. `burrow serve`'s flags build one, an `envs/*.toml`
//! definition is one, and [`crate::env::open::open`] consumes one, so a flag
//! and a definition field can never mean different things.
//!
//! Every field is optional: a definition says only what it sets, and the flags
//! typed on the command line are laid over it ([`EnvSpec::overlay`]). The
//! backends' own defaults fill the rest when the environment is opened.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};

/// One environment, as a definition file or the command line gives it. The
/// field names are the `burrow serve` flags without their `--`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EnvSpec {
    /// `local`, `docker`, `ssh`, or an object-storage URL (`s3://bucket/prefix`, ...).
    pub env: Option<String>,
    /// One line shown by `burrow envs`; not a flag.
    pub description: Option<String>,
    /// The workspace root: a local folder, the folder on the SSH host, or the
    /// workdir in the container.
    pub dir: Option<PathBuf>,

    // SSH.
    pub host: Option<String>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
    pub accept_new_host_key: Option<bool>,

    // Docker.
    pub image: Option<String>,
    pub container: Option<String>,
    pub workdir: Option<String>,
    pub mount: Option<PathBuf>,
    pub copy: Option<PathBuf>,
    pub network: Option<String>,
    /// The created container's name (`--name`).
    pub name: Option<String>,
    pub keep: Option<bool>,
    #[serde(default, deserialize_with = "cpus")]
    pub cpus: Option<f64>,
    /// Bytes; a file may write `"512m"` as the flag does.
    #[serde(default, deserialize_with = "memory")]
    pub memory: Option<i64>,

    // Object storage.
    pub s3_path_style: Option<bool>,
    pub object_load_config: Option<bool>,
    pub index_max_age: Option<u64>,
    pub object_cache_dir: Option<PathBuf>,
    /// Bytes; a file may write `"256M"` as the flag does.
    #[serde(default, deserialize_with = "size")]
    pub object_cache_size: Option<u64>,
    pub object_concurrency: Option<usize>,

    /// Labels for a created Docker container; never in a file or a flag
    /// (a workspace sets its id here).
    #[serde(skip)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The request error messages name to replace a dead container; never in
    /// a file or a flag (a workspace's carries its `?workspace=`).
    #[serde(skip)]
    pub recreate_request: Option<String>,
}

/// What kind of environment a spec opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Local,
    Docker,
    Ssh,
    Object,
}

/// A spec that cannot be opened, and the field to blame (kebab-case, as in
/// a file and as the flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> Invalid {
    Invalid { field, message: message.into() }
}

const DOCKER_FIELDS: [&str; 10] = ["image", "container", "workdir", "mount", "copy", "network", "name", "keep", "cpus", "memory"];
const DOCKER_IMAGE_ONLY: [&str; 6] = ["mount", "network", "name", "keep", "cpus", "memory"];
const SSH_FIELDS: [&str; 4] = ["host", "identity", "known-hosts", "accept-new-host-key"];
const OBJECT_FIELDS: [&str; 6] = ["s3-path-style", "object-load-config", "index-max-age", "object-cache-dir", "object-cache-size", "object-concurrency"];

impl EnvSpec {
    /// The kind `env` names (`local` when unset).
    pub fn kind(&self) -> Result<Kind, Invalid> {
        match self.env.as_deref().unwrap_or("local") {
            "local" => Ok(Kind::Local),
            "docker" => Ok(Kind::Docker),
            "ssh" => Ok(Kind::Ssh),
            url if url.contains("://") => Ok(Kind::Object),
            other => Err(invalid("env", format!("{other:?} is not an environment kind; expected local, docker, ssh or a URL such as s3://bucket/prefix"))),
        }
    }

    /// `env`, with the default filled in.
    pub fn env_name(&self) -> &str {
        self.env.as_deref().unwrap_or("local")
    }

    /// Sets every field `top` sets; `top` wins. A choice between two fields
    /// that exclude each other is replaced whole: `--container` over a
    /// definition's `image` attaches instead, `--mount` over its `copy` shares
    /// the folder instead.
    pub fn overlay(&mut self, top: EnvSpec) {
        if top.container.is_some() && top.image.is_none() {
            self.image = None;
        }
        if top.image.is_some() && top.container.is_none() {
            self.container = None;
        }
        if top.mount.is_some() && top.copy.is_none() {
            self.copy = None;
        }
        if top.copy.is_some() && top.mount.is_none() {
            self.mount = None;
        }
        macro_rules! take {
            ($($f:ident),*) => { $( if top.$f.is_some() { self.$f = top.$f; } )* };
        }
        take!(
            env,
            description,
            dir,
            host,
            identity,
            known_hosts,
            accept_new_host_key,
            image,
            container,
            workdir,
            mount,
            copy,
            network,
            name,
            keep,
            cpus,
            memory,
            s3_path_style,
            object_load_config,
            index_max_age,
            object_cache_dir,
            object_cache_size,
            object_concurrency
        );
    }

    /// The fields that are set, by their kebab-case names.
    pub fn set_fields(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        macro_rules! seen {
            ($($f:ident => $name:literal),*) => { $( if self.$f.is_some() { out.push($name); } )* };
        }
        seen!(
            host => "host", identity => "identity", known_hosts => "known-hosts", accept_new_host_key => "accept-new-host-key",
            image => "image", container => "container", workdir => "workdir", mount => "mount", copy => "copy", network => "network",
            name => "name", keep => "keep", cpus => "cpus", memory => "memory",
            s3_path_style => "s3-path-style", object_load_config => "object-load-config", index_max_age => "index-max-age",
            object_cache_dir => "object-cache-dir", object_cache_size => "object-cache-size", object_concurrency => "object-concurrency"
        );
        out
    }

    /// Refuses fields that the kind does not use. Applied to definition files,
    /// where a stray field is a mistake; on the command line, options of other
    /// backends (some come from environment variables) are ignored as before.
    pub fn check_fields_fit(&self) -> Result<(), Invalid> {
        let kind = self.kind()?;
        for field in self.set_fields() {
            let fits = match kind {
                Kind::Docker => DOCKER_FIELDS.contains(&field),
                Kind::Ssh => SSH_FIELDS.contains(&field),
                Kind::Object => OBJECT_FIELDS.contains(&field),
                Kind::Local => false,
            };
            if !fits {
                let env = self.env_name();
                return Err(invalid(field, format!("not an option of env = {env:?}")));
            }
        }
        Ok(())
    }

    /// Checks that the spec says enough to open its environment, before
    /// anything is created.
    pub fn validate(&self) -> Result<Kind, Invalid> {
        let kind = self.kind()?;
        match kind {
            Kind::Local | Kind::Object => {}
            Kind::Ssh => {
                if self.host.is_none() {
                    return Err(invalid("host", "an ssh environment needs a host, [user@]host[:port]"));
                }
                if self.dir.is_none() {
                    return Err(invalid("dir", "an ssh environment needs dir, the folder on the host"));
                }
            }
            Kind::Docker => {
                match (&self.image, &self.container) {
                    (None, None) => return Err(invalid("image", "a docker environment needs image (a new container) or container (a running one)")),
                    (Some(_), Some(_)) => return Err(invalid("container", "image and container exclude each other: a new container, or a running one")),
                    _ => {}
                }
                if self.container.is_some() {
                    let set = self.set_fields();
                    if let Some(field) = DOCKER_IMAGE_ONLY.iter().find(|f| set.contains(f)) {
                        return Err(invalid(field, "applies only to a container created from an image"));
                    }
                }
                if self.mount.is_some() && self.copy.is_some() {
                    return Err(invalid("copy", "mount and copy exclude each other: the host folder is either shared or copied"));
                }
                if let Some(w) = &self.workdir {
                    if !w.starts_with('/') || w.split('/').any(|c| c == "..") {
                        return Err(invalid("workdir", format!("{w:?} must be an absolute path inside the container, without '..'")));
                    }
                }
                if let Some(image) = &self.image {
                    if image.trim().is_empty() {
                        return Err(invalid("image", "is empty"));
                    }
                }
            }
        }
        Ok(kind)
    }

    /// Makes the host paths of a definition absolute: `~/` is the home folder,
    /// and a relative path is relative to `project`, whichever folder the file
    /// came from (so a shared definition's `copy = "."` copies the project it is
    /// used for). `dir` is a host path only for local environments.
    pub fn resolve_paths(&mut self, project: &Path, home: Option<&Path>) {
        let local = self.kind() == Ok(Kind::Local);
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p.as_mut() {
                *path = absolute(path, project, home);
            }
        };
        fix(&mut self.mount);
        fix(&mut self.copy);
        fix(&mut self.identity);
        fix(&mut self.known_hosts);
        fix(&mut self.object_cache_dir);
        if local {
            fix(&mut self.dir);
        }
    }

    /// A short summary for `burrow envs`: the kind and what it runs.
    pub fn summary(&self) -> String {
        let env = self.env_name();
        let what = match self.kind() {
            Ok(Kind::Docker) => self.image.as_deref().map(|i| format!("image {i}")).or_else(|| self.container.as_deref().map(|c| format!("container {c}"))),
            Ok(Kind::Ssh) => self.host.clone(),
            _ => None,
        };
        match what {
            Some(w) => format!("{env} ({w})"),
            None => env.to_string(),
        }
    }
}

fn absolute(path: &Path, project: &Path, home: Option<&Path>) -> PathBuf {
    if let (Ok(rest), Some(home)) = (path.strip_prefix("~"), home) {
        return home.join(rest);
    }
    let joined = project.join(path);
    // `copy = "."` reads better in messages as the project itself.
    if path == Path::new(".") {
        return project.to_path_buf();
    }
    joined
}

fn cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let n = f64::deserialize(d)?;
    if n > 0.0 && n.is_finite() && n <= 1024.0 {
        Ok(Some(n))
    } else {
        Err(serde::de::Error::custom(format!("{n} is not a CPU count such as 0.5 or 2")))
    }
}

/// A size written as a number of bytes or as a string with a unit.
enum SizeText {
    Bytes(u64),
    Text(String),
}

impl<'de> Deserialize<'de> for SizeText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = SizeText;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a size such as \"512m\" or \"2G\", or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<SizeText, E> {
                Ok(SizeText::Bytes(n))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<SizeText, E> {
                u64::try_from(n).map(SizeText::Bytes).map_err(|_| E::custom(format!("{n} is not a size")))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<SizeText, E> {
                Ok(SizeText::Text(s.to_string()))
            }
        }
        d.deserialize_any(Visit)
    }
}

fn memory<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let text = match SizeText::deserialize(d)? {
        SizeText::Bytes(n) => n.to_string(),
        SizeText::Text(t) => t,
    };
    parse_memory(&text).map(Some).map_err(serde::de::Error::custom)
}

#[cfg(feature = "docker")]
use crate::env::docker::parse_memory;

/// Without Docker support a memory limit means nothing; say so where it is written.
#[cfg(not(feature = "docker"))]
fn parse_memory(_: &str) -> Result<i64, String> {
    Err("this build of burrow has no Docker support".into())
}

fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match SizeText::deserialize(d)? {
        SizeText::Bytes(n) => Ok(Some(n)),
        SizeText::Text(t) => crate::env::object::options::parse_size(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EnvSpec, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn sizes_take_units_or_bytes() {
        let s = parse("env = \"docker\"\nimage = \"x\"\nmemory = \"512m\"\ncpus = 2\n").unwrap();
        assert_eq!(s.memory, Some(512 << 20));
        assert_eq!(s.cpus, Some(2.0));
        let s = parse("env = \"s3://b/p\"\nobject-cache-size = \"1G\"\n").unwrap();
        assert_eq!(s.object_cache_size, Some(1 << 30));
        assert!(parse("memory = \"lots\"").unwrap_err().message().contains("not a size"));
        assert!(parse("cpus = 0").is_err());
        let err = parse("memory = true").unwrap_err();
        assert!(err.message().contains("expected a size such as"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let docker = EnvSpec { env: Some("docker".into()), ..Default::default() };
        assert_eq!(docker.validate().unwrap_err().field, "image");
        let both = EnvSpec { image: Some("a".into()), container: Some("b".into()), ..docker.clone() };
        assert_eq!(both.validate().unwrap_err().field, "container");
        let attached = EnvSpec { container: Some("b".into()), keep: Some(true), ..docker.clone() };
        assert_eq!(attached.validate().unwrap_err().field, "keep");
        let ssh = EnvSpec { env: Some("ssh".into()), host: Some("h".into()), ..Default::default() };
        assert_eq!(ssh.validate().unwrap_err().field, "dir");
        let odd = EnvSpec { env: Some("python".into()), ..Default::default() };
        assert_eq!(odd.validate().unwrap_err().field, "env");
        let stray = EnvSpec { image: Some("a".into()), ..Default::default() };
        assert_eq!(stray.check_fields_fit().unwrap_err().field, "image");
        assert_eq!(EnvSpec::default().validate(), Ok(Kind::Local));
    }

    #[test]
    fn overlay_keeps_what_the_top_leaves_unset() {
        let mut base = EnvSpec { env: Some("docker".into()), image: Some("python:3.13".into()), keep: Some(false), ..Default::default() };
        base.overlay(EnvSpec { image: Some("python:3.12".into()), ..Default::default() });
        assert_eq!(base.image.as_deref(), Some("python:3.12"));
        assert_eq!(base.env.as_deref(), Some("docker"));
        assert_eq!(base.keep, Some(false));
        base.overlay(EnvSpec { container: Some("box".into()), ..Default::default() });
        assert_eq!((base.image, base.container.as_deref()), (None, Some("box")));
        let mut copied = EnvSpec { copy: Some(".".into()), ..Default::default() };
        copied.overlay(EnvSpec { mount: Some("/m".into()), ..Default::default() });
        assert_eq!((copied.copy, copied.mount), (None, Some(PathBuf::from("/m"))));
    }

    #[test]
    fn relative_host_paths_follow_the_project() {
        let mut s = EnvSpec { env: Some("docker".into()), copy: Some(".".into()), mount: Some("~/x".into()), workdir: Some("/w".into()), ..Default::default() };
        s.resolve_paths(Path::new("/p"), Some(Path::new("/home/u")));
        assert_eq!(s.copy, Some(PathBuf::from("/p")));
        assert_eq!(s.mount, Some(PathBuf::from("/home/u/x")));
        let mut remote = EnvSpec { env: Some("ssh".into()), dir: Some("src".into()), ..Default::default() };
        remote.resolve_paths(Path::new("/p"), None);
        assert_eq!(remote.dir, Some(PathBuf::from("src")));
    }
}

//! Named environment definitions: `burrow serve --env python` reads
//! `python.toml` from the project's `envs/` folder, else from the user's
//! `~/.config/burrow/envs/`, else from the definitions built into the binary
//! (the repository's top-level `envs/`). `--env-file PATH` reads one file.
//!
//! A definition is an [`EnvSpec`] written in TOML. Flags typed on the command
//! line are laid over it. Mistakes are refused at start, naming the file, the
//! line and the field, before any container or connection is made.

pub mod spec;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};

pub use spec::{EnvSpec, Invalid, Kind};

/// The definitions compiled into the binary, by name.
pub const BUILT_IN: [(&str, &str); 5] = [
    ("local", include_str!("../../envs/local.toml")),
    ("node", include_str!("../../envs/node.toml")),
    ("python", include_str!("../../envs/python.toml")),
    ("s3-example", include_str!("../../envs/s3-example.toml")),
    ("ssh-example", include_str!("../../envs/ssh-example.toml")),
];

/// The kinds `--env` names directly; used when no definition has the name.
const KINDS: [&str; 3] = ["local", "docker", "ssh"];

/// Where a definition comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `<project>/envs/NAME.toml`.
    Project(PathBuf),
    /// `~/.config/burrow/envs/NAME.toml`.
    User(PathBuf),
    /// Compiled into the binary.
    BuiltIn,
    /// Named by `--env-file`.
    File(PathBuf),
}

impl Origin {
    fn place(&self) -> &'static str {
        match self {
            Origin::Project(_) => "project",
            Origin::User(_) => "user",
            Origin::BuiltIn => "built-in",
            Origin::File(_) => "file",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Project(p) | Origin::User(p) | Origin::File(p) => write!(f, "{} {}", self.place(), p.display()),
            Origin::BuiltIn => f.write_str("built-in"),
        }
    }
}

/// One definition's text and where it was read.
#[derive(Debug, Clone)]
pub struct Definition {
    pub name: String,
    pub origin: Origin,
    pub text: String,
}

impl Definition {
    /// The file name used in messages: the path read, or `<built-in>/NAME.toml`.
    pub fn label(&self) -> String {
        match &self.origin {
            Origin::Project(p) | Origin::User(p) | Origin::File(p) => p.display().to_string(),
            Origin::BuiltIn => format!("<built-in>/{}.toml", self.name),
        }
    }

    /// Parses the text, refusing unknown fields, wrong types and fields the
    /// kind does not use, with the file, line and field in the message.
    pub fn parse(&self) -> anyhow::Result<EnvSpec> {
        let spec: EnvSpec = toml::from_str(&self.text).map_err(|e| anyhow!(self.syntax_error(&e)))?;
        spec.check_fields_fit().map_err(|bad| anyhow!(self.blame(&bad)))?;
        Ok(spec)
    }

    fn syntax_error(&self, e: &toml::de::Error) -> String {
        let Some(span) = e.span() else {
            return format!("{}: {}", self.label(), e.message());
        };
        let (line, col) = line_col(&self.text, span.start);
        let key = self.text.lines().nth(line - 1).and_then(key_of);
        match key {
            Some(key) => format!("{}:{line}:{col}: field `{key}`: {}", self.label(), e.message()),
            None => format!("{}:{line}:{col}: {}", self.label(), e.message()),
        }
    }

    /// A message for a field that cannot be used: at the field's line, or at
    /// `env`'s line when the field is missing.
    fn blame(&self, bad: &Invalid) -> String {
        let line = key_line(&self.text, bad.field).or_else(|| key_line(&self.text, "env")).unwrap_or(1);
        format!("{}:{line}: field `{}`: {}", self.label(), bad.field, bad.message)
    }
}

/// The 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The key a `key = value` line sets (bare or quoted).
fn key_of(line: &str) -> Option<String> {
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"').trim_matches('\'');
    let bare = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    bare.then(|| key.to_string())
}

/// The 1-based line that sets `field`.
fn key_line(text: &str, field: &str) -> Option<usize> {
    text.lines().position(|l| !l.trim_start().starts_with('#') && key_of(l).as_deref() == Some(field)).map(|i| i + 1)
}

/// Names the origin of a file found in one of the folders.
type MakeOrigin = fn(PathBuf) -> Origin;

/// The folders definitions are looked up in.
#[derive(Debug, Clone)]
pub struct Places {
    /// The project folder (`--dir` or the current folder); its `envs/` is searched first.
    pub project: PathBuf,
    /// `$XDG_CONFIG_HOME/burrow/envs` or `~/.config/burrow/envs`.
    pub user: Option<PathBuf>,
    /// The home folder, for `~/` in definitions.
    pub home: Option<PathBuf>,
}

impl Places {
    /// The places for `project`, with the user folder from the process environment.
    pub fn new(project: PathBuf) -> Self {
        let home = dirs::home_dir();
        let config = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from).filter(|p| p.is_absolute()).or_else(|| home.as_ref().map(|h| h.join(".config")));
        Self { project, user: config.map(|c| c.join("burrow").join("envs")), home }
    }

    fn folders(&self) -> Vec<(PathBuf, MakeOrigin)> {
        let mut out: Vec<(PathBuf, MakeOrigin)> = vec![(self.project.join("envs"), Origin::Project)];
        if let Some(user) = &self.user {
            out.push((user.clone(), Origin::User));
        }
        out
    }

    /// The definition `name` resolves to, first match wins.
    pub fn find(&self, name: &str) -> anyhow::Result<Option<Definition>> {
        check_name(name)?;
        for (folder, origin) in self.folders() {
            let path = folder.join(format!("{name}.toml"));
            match std::fs::read_to_string(&path) {
                Ok(text) => return Ok(Some(Definition { name: name.into(), origin: origin(path), text })),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
            }
        }
        Ok(BUILT_IN.iter().find(|(n, _)| *n == name).map(|(n, text)| Definition { name: n.to_string(), origin: Origin::BuiltIn, text: text.to_string() }))
    }

    /// Every definition, by name; each name's list starts with the one that
    /// wins and goes on with the ones it hides.
    pub fn all(&self) -> anyhow::Result<BTreeMap<String, Vec<Definition>>> {
        let mut out: BTreeMap<String, Vec<Definition>> = BTreeMap::new();
        for (folder, origin) in self.folders() {
            let entries = match std::fs::read_dir(&folder) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot list {}", folder.display())),
            };
            let mut found: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
            found.sort();
            for path in found {
                let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(".toml")) else { continue };
                if check_name(name).is_err() || !path.is_file() {
                    continue;
                }
                let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                out.entry(name.to_string()).or_default().push(Definition { name: name.to_string(), origin: origin(path), text });
            }
        }
        for (name, text) in BUILT_IN {
            out.entry(name.to_string()).or_default().push(Definition { name: name.to_string(), origin: Origin::BuiltIn, text: text.to_string() });
        }
        Ok(out)
    }
}

/// A name must not reach outside the envs folders.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty() && !name.starts_with('.') && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!("{name:?} is not an environment name (letters, digits, '-', '_' and '.'; use --env-file for a path)");
    }
    Ok(())
}

/// What the command line asks for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// `--env`: a definition name, a kind (`local`, `docker`, `ssh`) or a URL.
    pub env: Option<String>,
    /// `--env-file`.
    pub env_file: Option<PathBuf>,
    /// The other environment flags given explicitly; they override the definition.
    pub flags: EnvSpec,
}

/// The spec to open, and the definition it came from.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub spec: EnvSpec,
    pub from: Option<Definition>,
}

impl Resolved {
    /// One line for the log: which environment and where it was defined.
    pub fn describe(&self) -> String {
        match &self.from {
            Some(d) => format!("{} from {} ({})", d.name, d.origin, self.spec.summary()),
            None => self.spec.summary(),
        }
    }
}

/// Picks the definition, lays the flags over it and checks the result.
pub fn resolve(request: Request, places: &Places) -> anyhow::Result<Resolved> {
    let from = match (&request.env_file, request.env.as_deref()) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read --env-file {}", path.display()))?;
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            Some(Definition { name, origin: Origin::File(path.clone()), text })
        }
        (None, Some(url)) if url.contains("://") => None,
        (None, Some(name)) => match places.find(name)? {
            Some(def) => Some(def),
            None if KINDS.contains(&name) => None,
            None => {
                let known: Vec<String> = places.all().map(|all| all.into_keys().collect()).unwrap_or_default();
                bail!(
                    "--env {name:?}: no definition {name}.toml in {}; the kinds are local, docker, ssh or a URL, and the definitions: {}",
                    searched(places),
                    known.join(", ")
                );
            }
        },
        (None, None) => None,
    };
    let mut spec = match &from {
        Some(def) => {
            let mut spec = def.parse()?;
            spec.resolve_paths(&places.project, places.home.as_deref());
            spec
        }
        None => EnvSpec { env: Some(request.env.clone().unwrap_or_else(|| "local".into())), ..Default::default() },
    };
    let flags = request.flags;
    let flagged: Vec<&'static str> = flags.set_fields().into_iter().chain(flags.dir.is_some().then_some("dir")).collect();
    spec.overlay(flags);
    if let Err(bad) = spec.validate() {
        match &from {
            Some(def) if !flagged.contains(&bad.field) => bail!(def.blame(&bad)),
            _ => bail!("--{}: {}", bad.field, bad.message),
        }
    }
    Ok(Resolved { spec, from })
}

fn searched(places: &Places) -> String {
    let mut parts: Vec<String> = places.folders().into_iter().map(|(f, _)| f.display().to_string()).collect();
    parts.push("the built-in definitions".into());
    parts.join(", ")
}

/// The `burrow envs` table: every name, what it opens and where it comes from.
pub fn listing(places: &Places) -> anyhow::Result<String> {
    let mut rows = vec![["NAME".to_string(), "ENV".to_string(), "FROM".to_string(), "DESCRIPTION".to_string()]];
    for (name, defs) in places.all()? {
        let winner = &defs[0];
        let (env, description) = match winner.parse() {
            Ok(spec) => (spec.summary(), spec.description.unwrap_or_default()),
            Err(e) => ("(invalid)".to_string(), format!("{e:#}")),
        };
        let mut from = winner.origin.to_string();
        if defs.len() > 1 {
            let hidden: Vec<&str> = defs[1..].iter().map(|d| d.origin.place()).collect();
            from.push_str(&format!(" (hides {})", hidden.join(", ")));
        }
        rows.push([name, env, from, description]);
    }
    let widths: Vec<usize> = (0..3).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let line = format!("{:w0$}  {:w1$}  {:w2$}  {}", row[0], row[1], row[2], row[3], w0 = widths[0], w1 = widths[1], w2 = widths[2]);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out.push_str(&format!("\nLooked in: {}.\n", searched(places)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_definition_is_valid() {
        for (name, text) in BUILT_IN {
            let def = Definition { name: name.into(), origin: Origin::BuiltIn, text: text.into() };
            let spec = def.parse().unwrap_or_else(|e| panic!("{name}: {e:#}"));
            spec.validate().unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let def = |text: &str| Definition { name: "x".into(), origin: Origin::File("e/x.toml".into()), text: text.into() };
        let err = def("env = \"docker\"\n# a comment\nimag = \"python\"\n").parse().unwrap_err().to_string();
        assert!(err.starts_with("e/x.toml:3:1: field `imag`: unknown field `imag`"), "{err}");
        let err = def("env = \"docker\"\nimage = \"i\"\nkeep = \"yes\"\n").parse().unwrap_err().to_string();
        assert!(err.starts_with("e/x.toml:3:") && err.contains("field `keep`"), "{err}");
        let err = def("env = \"local\"\nimage = \"i\"\n").parse().unwrap_err().to_string();
        assert!(err.starts_with("e/x.toml:2: field `image`: not an option"), "{err}");
    }

    #[test]
    fn names_stay_inside_the_folders() {
        assert!(check_name("python").is_ok());
        assert!(check_name("py-3.13").is_ok());
        assert!(check_name("../x").is_err());
        assert!(check_name(".hidden").is_err());
        assert!(check_name("a/b").is_err());
    }
}

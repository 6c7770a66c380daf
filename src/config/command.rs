//! Slash commands: OpenCode's built-in `init` and `review`, the `command`
//! config, and skills (which the TUI also offers as commands).

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::Config;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Command {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// `command`, `mcp` or `skill`.
    pub source: String,
    pub template: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtask: Option<bool>,
    /// The placeholders the template takes: `$1`, `$2`, ..., then `$ARGUMENTS`.
    pub hints: Vec<String>,
}

/// A skill: instructions an agent loads on demand.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Skill {
    pub name: String,
    pub description: String,
    pub location: String,
    pub content: String,
}

/// The placeholders in a template, as OpenCode lists them.
pub fn hints(template: &str) -> Vec<String> {
    let mut numbered: Vec<u32> = Vec::new();
    let bytes = template.as_bytes();
    for (i, _) in template.match_indices('$') {
        let digits: String = bytes[i + 1..].iter().take_while(|b| b.is_ascii_digit()).map(|&b| b as char).collect();
        if let Ok(n) = digits.parse::<u32>() {
            if !numbered.contains(&n) {
                numbered.push(n);
            }
        }
    }
    numbered.sort_unstable();
    let mut out: Vec<String> = numbered.into_iter().map(|n| format!("${n}")).collect();
    if template.contains("$ARGUMENTS") {
        out.push("$ARGUMENTS".into());
    }
    out
}

/// The arguments of a command as OpenCode splits them: words, `"quoted"` or
/// `'quoted'` groups (quotes dropped), and `[Image N]` placeholders.
pub fn split_arguments(arguments: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = arguments;
    while let Some(c) = rest.chars().next() {
        let taken = if c.is_whitespace() {
            c.len_utf8()
        } else if let Some(n) = image_placeholder(rest) {
            out.push(rest[..n].to_string());
            n
        } else if c == '"' || c == '\'' {
            match rest[1..].find(c) {
                Some(end) => {
                    out.push(rest[1..1 + end].to_string());
                    end + 2
                }
                None => 1,
            }
        } else {
            let n = rest.find(|x: char| x.is_whitespace() || x == '"' || x == '\'').unwrap_or(rest.len());
            out.push(rest[..n].to_string());
            n
        };
        rest = &rest[taken..];
    }
    out
}

/// The length of a leading `[Image N]` (any case), if there is one.
fn image_placeholder(s: &str) -> Option<usize> {
    let head = s.get(..6).filter(|h| h.eq_ignore_ascii_case("[image"))?;
    let after = &s[head.len()..];
    let spaces = after.len() - after.trim_start().len();
    let digits = after[spaces..].bytes().take_while(u8::is_ascii_digit).count();
    (spaces > 0 && digits > 0 && after[spaces + digits..].starts_with(']')).then(|| head.len() + spaces + digits + 1)
}

/// A command's template with its arguments filled in, as OpenCode does it:
/// `$1`, `$2`, ... take the arguments in order and the highest one also takes
/// the rest; `$ARGUMENTS` takes them all as typed; a template with neither
/// gets the arguments appended.
pub fn expand(template: &str, arguments: &str) -> String {
    let args = split_arguments(arguments);
    let numbers: Vec<usize> = hints(template).iter().filter_map(|h| h[1..].parse().ok()).collect();
    let last = numbers.iter().copied().max().unwrap_or(0);
    let mut out = String::with_capacity(template.len() + arguments.len());
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            out.push('$');
            rest = &rest[at + 1..];
            continue;
        }
        let n: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
        if n >= 1 && n <= args.len() {
            if n == last {
                out.push_str(&args[n - 1..].join(" "))
            } else {
                out.push_str(&args[n - 1])
            }
        }
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    let all = template.contains("$ARGUMENTS");
    let mut out = out.replace("$ARGUMENTS", arguments);
    if numbers.is_empty() && !all && !arguments.trim().is_empty() {
        out.push_str("\n\n");
        out.push_str(arguments);
    }
    out
}

/// The built-in skills.
pub fn skills() -> Vec<Skill> {
    vec![Skill {
        name: "customize-opencode".into(),
        description: include_str!("builtin/skill_customize-opencode.description.txt").trim().into(),
        location: "<built-in>".into(),
        content: include_str!("builtin/skill_customize-opencode.md").into(),
    }]
}

/// Every command: built-ins, then the config's in file order, then skills.
/// `worktree` fills the `init` template.
pub fn list(config: &Config, worktree: &str) -> Vec<Command> {
    let builtin = |name: &str, description: &str, template: String, subtask: Option<bool>| Command {
        name: name.into(),
        description: Some(description.into()),
        agent: None,
        model: None,
        source: "command".into(),
        hints: hints(&template),
        template,
        subtask,
    };
    let mut out = vec![
        builtin("init", "guided AGENTS.md setup", include_str!("builtin/command_init.txt").replace("{{worktree}}", worktree), None),
        builtin("review", "review changes [commit|branch|pr], defaults to uncommitted", include_str!("builtin/command_review.txt").into(), Some(true)),
    ];
    for (name, v) in config.object("command").into_iter().flatten() {
        let Some(template) = v.get("template").and_then(Value::as_str) else { continue };
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let cmd = Command {
            name: name.clone(),
            description: s("description"),
            agent: s("agent"),
            model: s("model"),
            source: "command".into(),
            template: template.into(),
            subtask: v.get("subtask").and_then(Value::as_bool),
            hints: hints(template),
        };
        match out.iter_mut().find(|c| c.name == *name) {
            Some(existing) => *existing = cmd,
            None => out.push(cmd),
        }
    }
    out.extend(skills().into_iter().map(|s| Command {
        name: s.name,
        description: Some(s.description),
        agent: None,
        model: None,
        source: "skill".into(),
        template: s.content,
        subtask: None,
        hints: Vec::new(),
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_list_numbers_then_arguments() {
        assert_eq!(hints("do $2 and $1 with $ARGUMENTS, $1 again"), vec!["$1", "$2", "$ARGUMENTS"]);
        assert!(hints("plain").is_empty());
    }

    #[test]
    fn arguments_split_like_opencode() {
        assert_eq!(split_arguments(r#"a "b c" 'd e'  f[Image 2] [image 10] x"#), vec!["a", "b c", "d e", "f[Image", "2]", "[image 10]", "x"]);
        assert_eq!(split_arguments("  "), Vec::<String>::new());
        assert_eq!(split_arguments(r#"say "unclosed"#), vec!["say", "unclosed"]);
    }

    #[test]
    fn templates_take_their_arguments() {
        assert_eq!(expand("fix $1 in $2", "bug src/a.rs and more"), "fix bug in src/a.rs and more");
        assert_eq!(expand("$2 then $1 then $3", "a"), " then a then ");
        assert_eq!(expand("review: $ARGUMENTS ($1)", r#"x "y z""#), r#"review: x "y z" (x y z)"#);
        assert_eq!(expand("costs $ 5", "now"), "costs $ 5\n\nnow");
        assert_eq!(expand("plain", "  "), "plain");
    }
}

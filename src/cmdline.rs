//! Splits a command line into arguments the way a POSIX shell would quote them, without ever
//! running a shell: a camera's custom FFmpeg `command` must not be able to run anything else.

/// Splits on whitespace; `'…'` is literal, `"…"` allows `\"` and `\\`, a backslash outside
/// quotes escapes the next character. No variables, globs, pipes or redirections.
pub fn split_command(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut in_arg = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_arg {
                    args.push(std::mem::take(&mut cur));
                    in_arg = false;
                }
            }
            '\'' => {
                in_arg = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_arg = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"') | Some('\\')) => {
                            cur.push(chars.next().unwrap_or('\\'))
                        }
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_arg = true;
                match chars.next() {
                    Some(ch) => cur.push(ch),
                    None => return Err("trailing backslash".into()),
                }
            }
            c => {
                in_arg = true;
                cur.push(c);
            }
        }
    }
    if in_arg {
        args.push(cur);
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_like_a_shell_without_one() {
        assert_eq!(
            split_command(r#"-i $url -vf "scale=640:-1, fps=5" -metadata title='a b' x\ y ; rm -rf /"#).unwrap(),
            vec!["-i", "$url", "-vf", "scale=640:-1, fps=5", "-metadata", "title=a b", "x y", ";", "rm", "-rf", "/"]
        );
        assert_eq!(split_command("  ").unwrap(), Vec::<String>::new());
        assert_eq!(split_command("''").unwrap(), vec![""]);
        assert_eq!(split_command(r#""a\"b""#).unwrap(), vec![r#"a"b"#]);
    }

    #[test]
    fn reports_broken_quoting() {
        assert!(split_command("-i 'x").is_err());
        assert!(split_command("-i \"x").is_err());
        assert!(split_command("x\\").is_err());
    }
}

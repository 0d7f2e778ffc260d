//! A small dotenv reader: `KEY=value` lines into pairs, for `env_file` and the
//! secrets file. It owns the syntax only; where the file is, who may read it and
//! what the pairs mean is the caller's business.
//!
//! Written here rather than taken from a crate because the common ones
//! (dotenvy) expand `$VAR` from the process environment while parsing: a value
//! here is exactly what the file says, and nothing is read but the text given.
//!
//! The syntax: blank lines and lines starting with `#` are skipped; an
//! optional `export ` prefix; `KEY=value` with KEY `[A-Za-z_][A-Za-z0-9_]*`.
//! An unquoted value ends at the line's end or at ` #` (a comment) and is
//! trimmed; `'single'` quotes are literal; `"double"` quotes know `\n`, `\t`,
//! `\r`, `\"`, `\\` and `\$`. Quoted values may span lines (a PEM key). A key
//! given twice keeps its last value. Errors name the line, never a value.

use std::fmt;

/// Why a dotenv text does not parse: the line and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct DotenvError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// The pairs of `text`, in file order (a repeated key appears once, where it
/// was first given, with its last value).
pub fn parse(text: &str) -> Result<Vec<(String, String)>, DotenvError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut cursor = Cursor {
        chars: text.chars().collect(),
        at: 0,
        line: 1,
    };
    while let Some(c) = cursor.peek() {
        if c == '\n' || c.is_whitespace() {
            cursor.bump();
            continue;
        }
        if c == '#' {
            cursor.skip_line();
            continue;
        }
        let line = cursor.line;
        let (key, value) = cursor.pair()?;
        if !valid_key(&key) {
            return Err(DotenvError {
                line,
                message: format!(
                    "invalid name {key:?}: use letters, digits and '_', not starting with a digit"
                ),
            });
        }
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    Ok(pairs)
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

struct Cursor {
    chars: Vec<char>,
    at: usize,
    line: usize,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.at += 1;
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn skip_line(&mut self) {
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
        }
    }

    fn error(&self, line: usize, message: impl fmt::Display) -> DotenvError {
        DotenvError {
            line,
            message: message.to_string(),
        }
    }

    /// `[export ]KEY=value` up to and including the end of its (last) line.
    fn pair(&mut self) -> Result<(String, String), DotenvError> {
        let line = self.line;
        let mut key = String::new();
        while let Some(c) = self.peek() {
            if c == '=' || c == '\n' {
                break;
            }
            self.bump();
            key.push(c);
        }
        if self.peek() != Some('=') {
            return Err(self.error(line, "expected KEY=value"));
        }
        self.bump();
        let key = key.trim();
        let key = key
            .strip_prefix("export")
            .filter(|rest| rest.starts_with(char::is_whitespace))
            .map_or(key, str::trim_start)
            .to_string();
        while self.peek().is_some_and(|c| c == ' ' || c == '\t') {
            self.bump();
        }
        let value = match self.peek() {
            Some(quote @ ('"' | '\'')) => {
                self.bump();
                let value = self.quoted(quote, line)?;
                self.rest_of_line(line)?;
                value
            }
            _ => self.unquoted(),
        };
        Ok((key, value))
    }

    fn quoted(&mut self, quote: char, line: usize) -> Result<String, DotenvError> {
        let mut value = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error(line, format!("the value's {quote} quote is never closed")));
            };
            match c {
                c if c == quote => return Ok(value),
                '\\' if quote == '"' => match self.bump() {
                    Some('n') => value.push('\n'),
                    Some('t') => value.push('\t'),
                    Some('r') => value.push('\r'),
                    Some(c @ ('"' | '\\' | '$')) => value.push(c),
                    Some(c) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => {}
                },
                c => value.push(c),
            }
        }
    }

    /// After a closing quote: only blanks or a comment.
    fn rest_of_line(&mut self, line: usize) -> Result<(), DotenvError> {
        while let Some(c) = self.peek() {
            match c {
                '\n' => {
                    self.bump();
                    return Ok(());
                }
                ' ' | '\t' | '\r' => {
                    self.bump();
                }
                '#' => {
                    self.skip_line();
                    return Ok(());
                }
                _ => {
                    return Err(self.error(
                        line,
                        "unexpected text after the closing quote (put a # before a comment)",
                    ));
                }
            }
        }
        Ok(())
    }

    fn unquoted(&mut self) -> String {
        let mut value = String::new();
        while let Some(c) = self.bump() {
            if c == '\n' {
                break;
            }
            if c == '#' && (value.is_empty() || value.ends_with([' ', '\t'])) {
                self.skip_line();
                break;
            }
            value.push(c);
        }
        value.trim().to_string()
    }
}

#[cfg(test)]
mod tests;

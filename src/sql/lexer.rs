//! A small MySQL/MariaDB lexer: just enough to see SQL the way the server does.
//!
//! The classifier must never be fooled by comments or strings, so this lexer
//! (not sqlparser) decides what is code: it drops ordinary comments, inlines
//! executable comments (`/*! … */`, `/*M! … */`), which the server runs, and
//! splits a packet into statements on `;` outside strings and comments.

/// What a token is; only bare words can be keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A bare word: keyword, unquoted identifier or number.
    Word,
    /// A backtick-quoted identifier; never a keyword.
    QuotedIdent,
    /// A `'…'` or `"…"` literal (`"…"` may be an identifier under ANSI_QUOTES;
    /// either way it is never a keyword).
    Str,
    /// `@name`, `@@name`, `@@global.name`, `@'quoted'`.
    Var,
    /// Any other single character (`(`, `,`, `;`, `=`, `.` …).
    Punct,
}

/// One token of normalised SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What kind of token this is.
    pub kind: TokenKind,
    /// Words and variables: upper-cased so keyword checks are plain
    /// comparisons. Strings and quoted identifiers: the unescaped content
    /// (needed to classify `PREPARE s FROM '…'`). Punctuation: the character.
    pub text: String,
    /// Byte offset of the token's first byte in the piece's text.
    pub start: usize,
    /// Byte offset just past the token in the piece's text.
    pub end: usize,
}

impl Token {
    /// True for a bare word equal to `kw` (upper case); quoted text never matches.
    pub fn is_word(&self, kw: &str) -> bool {
        self.kind == TokenKind::Word && self.text == kw
    }

    /// True for the punctuation character `c`.
    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.len() == c.len_utf8() && self.text.starts_with(c)
    }
}

/// One statement of a packet: comment-free text plus its tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// Normalised text: comments replaced by a space, executable comments
    /// inlined; this is what sqlparser sees.
    pub text: String,
    /// Tokens of `text`, offsets relative to `text`.
    pub tokens: Vec<Token>,
    /// True when the statement has a `BEGIN … END` body (stored program or
    /// MariaDB compound statement), so inner `;` did not split it; the
    /// classifier then also looks at the inner statements one by one.
    pub compound: bool,
}

/// Lexes a whole packet and splits it into statements; empty statements are dropped.
///
/// `backslash_escapes` is false to lex as under `NO_BACKSLASH_ESCAPES`: the proxy
/// cannot know the session's sql_mode, so the classifier lexes both ways.
pub fn split(sql: &str, backslash_escapes: bool) -> Vec<Piece> {
    let (text, tokens) = lex(sql, backslash_escapes);
    let mut pieces = Vec::new();
    let mut start_tok = 0;
    let mut block = Block::default();
    for (i, tok) in tokens.iter().enumerate() {
        if tok.is_punct(';') && block.depth == 0 {
            push_piece(&mut pieces, &text, &tokens[start_tok..i], block.compound);
            start_tok = i + 1;
            block = Block::default();
        } else {
            block.feed(&tokens[start_tok..], i - start_tok);
        }
    }
    push_piece(&mut pieces, &text, &tokens[start_tok..], block.compound);
    pieces
}

/// Tracks `BEGIN … END` nesting so that a stored-program body is not split
/// at its inner `;` — the server parses it as one statement.
#[derive(Default)]
struct Block {
    depth: usize,
    compound: bool,
    /// Whether this statement can have a body; decided at its first token.
    tracks: Option<bool>,
}

impl Block {
    /// Looks at token `i` of the current statement `toks`.
    fn feed(&mut self, toks: &[Token], i: usize) {
        let Some(tok) = toks.get(i) else { return };
        // Only statements that can carry a body track blocks: a plain
        // `BEGIN` elsewhere starts a transaction, and merging statements
        // by mistake could hide a second statement's first keyword.
        let tracks = *self.tracks.get_or_insert_with(|| match toks.first() {
            Some(f) if f.is_word("CREATE") || f.is_word("ALTER") => true,
            Some(f) if f.is_word("BEGIN") => {
                toks.get(1).is_some_and(|t| t.is_word("NOT"))
                    && toks.get(2).is_some_and(|t| t.is_word("ATOMIC"))
            }
            _ => false,
        });
        if !tracks {
            return;
        }
        if tok.kind != TokenKind::Word {
            return;
        }
        let next = toks.get(i + 1);
        match tok.text.as_str() {
            "BEGIN" => {
                self.depth += 1;
                self.compound = true;
            }
            "CASE" => self.depth += 1,
            "END" => {
                // `END IF`, `END LOOP` … close blocks that only exist inside
                // a BEGIN … END, so they do not change the depth; `END CASE`
                // closes the CASE counted above, like a bare `END`.
                let closes_other = next.is_some_and(|n| {
                    ["IF", "LOOP", "WHILE", "REPEAT", "FOR"]
                        .iter()
                        .any(|k| n.is_word(k))
                });
                if !closes_other {
                    self.depth = self.depth.saturating_sub(1);
                }
            }
            _ => {}
        }
    }
}

fn push_piece(pieces: &mut Vec<Piece>, text: &str, toks: &[Token], compound: bool) {
    let (Some(first), Some(last)) = (toks.first(), toks.last()) else {
        return;
    };
    let base = first.start;
    let Some(slice) = text.get(base..last.end) else {
        return;
    };
    let tokens = toks
        .iter()
        .map(|t| Token {
            start: t.start - base,
            end: t.end - base,
            ..t.clone()
        })
        .collect();
    pieces.push(Piece {
        text: slice.to_string(),
        tokens,
        compound,
    });
}

/// Lexes `sql` into normalised text and tokens whose offsets index that text.
pub fn lex(sql: &str, backslash_escapes: bool) -> (String, Vec<Token>) {
    Lexer {
        src: sql.as_bytes(),
        pos: 0,
        out: String::with_capacity(sql.len()),
        tokens: Vec::new(),
        exec_depth: 0,
        backslash_escapes,
    }
    .run()
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    out: String,
    tokens: Vec<Token>,
    /// How many executable comments we are inside; their `*/` is a separator.
    exec_depth: usize,
    backslash_escapes: bool,
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.src.get(self.pos + off).copied()
    }

    fn starts_with(&self, s: &[u8]) -> bool {
        self.src.get(self.pos..).is_some_and(|r| r.starts_with(s))
    }

    /// Copies source bytes `from..self.pos` to the output (always whole UTF-8
    /// characters, since we only stop on ASCII bytes).
    fn copy_from(&mut self, from: usize) -> (usize, usize) {
        let start = self.out.len();
        let bytes = self.src.get(from..self.pos).unwrap_or_default();
        self.out.push_str(&String::from_utf8_lossy(bytes));
        (start, self.out.len())
    }

    fn push(&mut self, kind: TokenKind, text: String, span: (usize, usize)) {
        self.tokens.push(Token {
            kind,
            text,
            start: span.0,
            end: span.1,
        });
    }

    fn run(mut self) -> (String, Vec<Token>) {
        while let Some(b) = self.peek(0) {
            match b {
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'*' if self.exec_depth > 0 && self.peek(1) == Some(b'/') => {
                    self.exec_depth -= 1;
                    self.pos += 2;
                    self.out.push(' ');
                }
                b'#' => self.line_comment(),
                b'-' if self.peek(1) == Some(b'-')
                    && self
                        .peek(2)
                        .is_none_or(|c| c.is_ascii_whitespace() || c.is_ascii_control()) =>
                {
                    self.line_comment()
                }
                b'\'' | b'"' => {
                    let start = self.pos;
                    let content = self.quoted(b, self.backslash_escapes);
                    let span = self.copy_from(start);
                    self.push(TokenKind::Str, content, span);
                }
                b'`' => {
                    let start = self.pos;
                    let content = self.quoted(b'`', false);
                    let span = self.copy_from(start);
                    self.push(TokenKind::QuotedIdent, content, span);
                }
                b'@' => self.variable(),
                _ if is_word_byte(b) => {
                    let start = self.pos;
                    while self.peek(0).is_some_and(is_word_byte) {
                        self.pos += 1;
                    }
                    let span = self.copy_from(start);
                    let word = self.out[span.0..span.1].to_ascii_uppercase();
                    self.push(TokenKind::Word, word, span);
                }
                _ if b.is_ascii_whitespace() => {
                    self.pos += 1;
                    self.out.push(b as char);
                }
                _ => {
                    let start = self.pos;
                    self.pos += 1;
                    let span = self.copy_from(start);
                    let text = self.out[span.0..span.1].to_string();
                    self.push(TokenKind::Punct, text, span);
                }
            }
        }
        (self.out, self.tokens)
    }

    /// `/* … */`, or an executable comment whose markers are dropped so its
    /// content is lexed as code (the server executes it, whatever the version).
    fn block_comment(&mut self) {
        let exec_marker = if self.starts_with(b"/*!") {
            Some(3)
        } else if self.starts_with(b"/*M!") {
            Some(4)
        } else {
            None
        };
        if let Some(len) = exec_marker {
            self.pos += len;
            let digits = self.src[self.pos..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 5 || digits == 6 {
                self.pos += digits;
            }
            self.exec_depth += 1;
            self.out.push(' ');
            return;
        }
        self.pos += 2;
        while self.pos < self.src.len() && !self.starts_with(b"*/") {
            self.pos += 1;
        }
        self.pos = (self.pos + 2).min(self.src.len());
        self.out.push(' ');
    }

    /// `#` or `-- ` to end of line. Inside an executable comment it also stops
    /// at `*/`, so that we rather see too much code than too little.
    fn line_comment(&mut self) {
        while let Some(b) = self.peek(0) {
            if b == b'\n' || (self.exec_depth > 0 && self.starts_with(b"*/")) {
                break;
            }
            self.pos += 1;
        }
        self.out.push(' ');
    }

    /// A quoted string or identifier starting at `self.pos`; returns its
    /// unescaped content. Unterminated quotes run to the end of input.
    fn quoted(&mut self, q: u8, backslash: bool) -> String {
        self.pos += 1;
        let mut content = Vec::new();
        while let Some(b) = self.peek(0) {
            if backslash && b == b'\\' {
                let Some(e) = self.peek(1) else {
                    self.pos += 1;
                    break;
                };
                content.extend_from_slice(match e {
                    b'n' => b"\n",
                    b't' => b"\t",
                    b'r' => b"\r",
                    b'0' => b"\0",
                    b'b' => b"\x08",
                    b'Z' => b"\x1a",
                    // The server keeps the backslash for LIKE wildcards.
                    b'%' => b"\\%",
                    b'_' => b"\\_",
                    _ => std::slice::from_ref(&e),
                });
                self.pos += 2;
            } else if b == q {
                if self.peek(1) == Some(q) {
                    content.push(q);
                    self.pos += 2;
                } else {
                    self.pos += 1;
                    break;
                }
            } else {
                content.push(b);
                self.pos += 1;
            }
        }
        String::from_utf8_lossy(&content).into_owned()
    }

    /// `@x`, `@@x`, `@@global.x`, `@'x'`, `` @`x` ``.
    fn variable(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let prefix = if self.peek(0) == Some(b'@') {
            self.pos += 1;
            "@@"
        } else {
            "@"
        };
        match self.peek(0) {
            Some(q @ (b'\'' | b'"' | b'`')) => {
                let name = self.quoted(q, q != b'`' && self.backslash_escapes);
                let span = self.copy_from(start);
                let text = format!("{prefix}{}", name.to_ascii_uppercase());
                self.push(TokenKind::Var, text, span);
            }
            _ => {
                while self.peek(0).is_some_and(|b| is_word_byte(b) || b == b'.') {
                    self.pos += 1;
                }
                let span = self.copy_from(start);
                let text = self.out[span.0..span.1].to_ascii_uppercase();
                self.push(TokenKind::Var, text, span);
            }
        }
    }
}

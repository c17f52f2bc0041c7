//! Coupon codes: what is printed on a coupon, typed at the till, or read by a scanner.
//!
//! A generated code is the template's prefix (up to 8 characters, may be empty), then
//! [`RANDOM_CHARS`] characters drawn uniformly from [`ALPHABET`] with `rand::rng()` (a
//! ChaCha CSPRNG seeded from the operating system), then one check character.
//!
//! - **Unguessable.** 12 characters of 30 are 12 × log2(30) ≈ 58.9 random bits (30¹² ≈ 5.3 ×
//!   10¹⁷ codes), so codes cannot be enumerated or guessed from ones seen.
//! - **Checked.** The check character is Luhn mod N (N = 30) over the random part. It catches
//!   every single-character error and every swap of neighbours except '2' with 'Z', so
//!   [`is_generated`] tells a mistyped code from a real one without a lookup. The prefix is
//!   left out: it is fixed per template, and a typo in it simply finds no coupon.
//! - **Unambiguous.** The alphabet has no 0/O, no 1/I/L, and no U (read as V, and it keeps
//!   accidental words out).
//! - **Unique per tenant.** The store enforces it (an insert refuses a code it holds).
//!   Generation only makes collisions negligible: among a million codes of one prefix the
//!   chance that any two are alike is about n²/(2 × 30¹²) ≈ 9.4 × 10⁻⁷, under one in a million.
//!
//! Codes are stored normalized ([`normalize`]): upper case, no separators. [`display`] adds
//! separators for printing. Imported codes (printed by another system) may use any of
//! A-Z and 0-9 and carry no check character; [`is_generated`] tells generated ones apart.

use std::collections::HashSet;

use loyalty_common::ServiceError;
use loyalty_common::error::ServiceResult;
use rand::Rng;

/// The characters of generated codes and prefixes: digits and upper-case letters without
/// 0/O, 1/I/L and U.
pub const ALPHABET: &[u8; 30] = b"23456789ABCDEFGHJKMNPQRSTVWXYZ";
/// The random characters of a generated code, after the prefix and before the check character.
pub const RANDOM_CHARS: usize = 12;
/// The longest prefix: with the random part and check character a code stays short to type.
pub const MAX_PREFIX: usize = 8;
/// The shortest code [`normalize`] accepts (imported codes included).
pub const MIN_CODE_LEN: usize = 4;
/// The longest code [`normalize`] accepts (imported codes included).
pub const MAX_CODE_LEN: usize = 64;
/// The longest template, batch or campaign id.
pub const MAX_ID_LEN: usize = 64;

/// N of Luhn mod N.
const N: usize = ALPHABET.len();

/// The characters a generated code adds to its prefix: the random part and the check character.
const GENERATED_CHARS: usize = RANDOM_CHARS + 1;

/// A new code: `prefix` (already checked with [`check_prefix`]), the random part, and the
/// check character.
pub fn generate(prefix: &str) -> String {
    generate_with(&mut rand::rng(), prefix)
}

/// [`generate`] with the given generator, so a batch draws from one handle and tests can
/// use a seeded one.
fn generate_with<R: Rng + ?Sized>(rng: &mut R, prefix: &str) -> String {
    let body: [usize; RANDOM_CHARS] = std::array::from_fn(|_| rng.random_range(0..N));
    let check = luhn_check(body.iter().copied());
    let mut code = String::with_capacity(prefix.len() + GENERATED_CHARS);
    code.push_str(prefix);
    code.extend(body.iter().map(|&cp| char::from(char_at(cp))));
    code.push(char::from(check));
    code
}

/// `count` distinct new codes with `prefix`. The caller bounds `count` (a batch's size).
pub fn generate_batch(prefix: &str, count: usize) -> Vec<String> {
    let mut rng = rand::rng();
    let mut seen = HashSet::with_capacity(count);
    let mut codes = Vec::with_capacity(count);
    while codes.len() < count {
        let code = generate_with(&mut rng, prefix);
        // A collision within a batch is negligible, but the store would refuse the second
        // copy and the batch would come up one short; drawing again costs nothing.
        if seen.insert(code.clone()) {
            codes.push(code);
        }
    }
    codes
}

/// The check character of `body` (Luhn mod N), or None if a character of `body` is not in
/// [`ALPHABET`].
pub fn check_character(body: &[u8]) -> Option<u8> {
    let codepoints = body
        .iter()
        .map(|&c| codepoint(c))
        .collect::<Option<Vec<_>>>()?;
    Some(luhn_check(codepoints.into_iter()))
}

/// Whether `code` is a generated code with a `prefix_len`-byte prefix: exactly
/// [`RANDOM_CHARS`] alphabet characters and a correct check character follow the prefix.
pub fn is_generated(code: &str, prefix_len: usize) -> bool {
    if prefix_len.checked_add(GENERATED_CHARS) != Some(code.len()) {
        return false;
    }
    let Some((check, body)) = code
        .as_bytes()
        .get(prefix_len..)
        .and_then(<[u8]>::split_last)
    else {
        return false;
    };
    check_character(body) == Some(*check)
}

/// The stored form of a code as a cashier typed it or a scanner read it: whitespace and '-'
/// removed, ASCII letters upper-cased. Refuses anything but 4 to 64 letters and digits.
pub fn normalize(input: &str) -> ServiceResult<String> {
    let mut code = String::with_capacity(MAX_CODE_LEN);
    for c in input.chars() {
        // A Chinese input method in full-width mode types ＡＢＣ１２３: the same characters.
        let c = match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0).unwrap_or(c),
            c => c,
        };
        // Whitespace anywhere, not just spaces: scanners end with a newline or a tab.
        if c.is_whitespace() || c == '-' {
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            return Err(ServiceError::invalid(format!(
                "code: {c:?} is not allowed; a code has only letters A-Z and digits 0-9 \
                 (spaces and '-' are ignored)"
            )));
        }
        // Stops early, so an oversized input costs no more than a valid one.
        if code.len() == MAX_CODE_LEN {
            return Err(length_error());
        }
        code.push(c.to_ascii_uppercase());
    }
    if code.len() < MIN_CODE_LEN {
        return Err(length_error());
    }
    Ok(code)
}

fn length_error() -> ServiceError {
    ServiceError::invalid(format!(
        "code: must be {MIN_CODE_LEN} to {MAX_CODE_LEN} letters A-Z and digits 0-9 \
         (spaces and '-' are ignored)"
    ))
}

/// `code` in groups of four joined by '-', for printing: `ABCD-EFGH-2345`. [`normalize`]
/// reads it back.
pub fn display(code: &str) -> String {
    let mut out = String::with_capacity(code.len() + code.len() / 4);
    for (i, c) in code.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(c);
    }
    out
}

/// Checks a template's code prefix: up to 8 characters of [`ALPHABET`], so a generated code
/// is unambiguous from its first character.
pub fn check_prefix(prefix: &str) -> ServiceResult<()> {
    if prefix.len() > MAX_PREFIX || !prefix.bytes().all(|c| ALPHABET.contains(&c)) {
        return Err(ServiceError::invalid(format!(
            "prefix: must be at most {MAX_PREFIX} characters of {} \
             (no 0, O, 1, I, L or U)",
            String::from_utf8_lossy(ALPHABET)
        )));
    }
    Ok(())
}

/// Checks an identifier (template, batch, campaign): 1 to 64 ASCII letters, digits, '-',
/// '_' or '.', so it is safe in keys, URLs and logs. The error names `field`.
pub fn check_id(field: &str, id: &str) -> ServiceResult<()> {
    let allowed = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
    if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(allowed) {
        return Err(ServiceError::invalid(format!(
            "{field}: must be 1 to {MAX_ID_LEN} characters, each a letter A-Z or a-z, \
             a digit, '-', '_' or '.'"
        )));
    }
    Ok(())
}

/// The position of `c` in [`ALPHABET`].
fn codepoint(c: u8) -> Option<usize> {
    ALPHABET.iter().position(|&a| a == c)
}

/// The character at `codepoint`, which wraps so that any input is in bounds.
fn char_at(codepoint: usize) -> u8 {
    ALPHABET[codepoint % N]
}

/// The Luhn mod N check character of the codepoints of a body, left to right.
fn luhn_check(codepoints: impl DoubleEndedIterator<Item = usize>) -> u8 {
    // From the right, every other codepoint is doubled starting with the last (the check
    // character, appended after it, is not), and a doubled value's "digits" in base N are
    // summed. Doubling makes a swap of neighbours change the sum (for all pairs but '2' and
    // 'Z'); summing the digits keeps the doubling a permutation of 0..N, so any single
    // change does too.
    let sum = codepoints.rev().enumerate().fold(0, |sum, (i, cp)| {
        let addend = if i % 2 == 0 { cp * 2 } else { cp };
        (sum + addend / N + addend % N) % N
    });
    char_at(N - sum)
}

#[cfg(test)]
mod tests;

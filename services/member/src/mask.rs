//! Personal data as shown to callers without the unmask permission: enough to recognise a
//! member at the till, not enough to contact or identify them.

/// `13812345678` → `138****5678`; short numbers keep their last two digits only.
pub fn phone(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    match chars.len() {
        n if n >= 8 => {
            let head: String = chars[..3].iter().collect();
            let tail: String = chars[n - 4..].iter().collect();
            format!("{head}****{tail}")
        }
        n if n > 2 => format!(
            "{}{}",
            "*".repeat(n - 2),
            chars[n - 2..].iter().collect::<String>()
        ),
        n => "*".repeat(n),
    }
}

/// `alice@example.cn` → `a***@example.cn`.
pub fn email(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `王小明` → `王**`; `Alice Chen` → `A*********`: the first character only.
pub fn name(value: &str) -> String {
    let mut chars = value.chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count())),
        None => String::new(),
    }
}

/// `110101199003071234` → `1101**********1234`.
pub fn id_number(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    if n <= 8 {
        return "*".repeat(n);
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[n - 4..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(n - 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_what_recognises_and_hide_the_rest() {
        assert_eq!(phone("13812345678"), "138****5678");
        assert_eq!(phone("12345"), "***45");
        assert_eq!(phone("1"), "*");
        assert_eq!(email("alice@example.cn"), "a***@example.cn");
        assert_eq!(email("not-an-email"), "***");
        assert_eq!(name("王小明"), "王**");
        assert_eq!(name("Alice"), "A****");
        assert_eq!(name(""), "");
        assert_eq!(id_number("110101199003071234"), "1101**********1234");
        assert_eq!(id_number("1234"), "****");
    }
}

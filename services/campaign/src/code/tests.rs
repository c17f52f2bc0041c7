use super::*;
use loyalty_common::ErrorCode;
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Codes from a seeded generator, so the exhaustive and measuring tests are reproducible.
fn seeded_codes(seed: u64, prefix: &str, count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| generate_with(&mut rng, prefix))
        .collect()
}

/// The message of a refusal, which must be InvalidArgument.
fn refusal(result: ServiceResult<impl std::fmt::Debug>) -> String {
    let err = result.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument, "{err:?}");
    err.message
}

#[test]
fn generated_codes_have_the_prefix_alphabet_length_and_a_valid_check_character() {
    for prefix in ["", "W", "SAVE", "HAPPY725"] {
        check_prefix(prefix).unwrap();
        for _ in 0..200 {
            let code = generate(prefix);
            assert_eq!(code.len(), prefix.len() + RANDOM_CHARS + 1, "{code}");
            let (head, generated) = code.split_at(prefix.len());
            assert_eq!(head, prefix);
            assert!(generated.bytes().all(|c| ALPHABET.contains(&c)), "{code}");
            let (body, check) = generated.as_bytes().split_at(RANDOM_CHARS);
            assert_eq!(check_character(body), Some(check[0]), "{code}");
            assert!(is_generated(&code, prefix.len()), "{code}");
            // Already in stored form.
            assert_eq!(normalize(&code).unwrap(), code);
        }
    }
}

#[test]
fn the_alphabet_has_no_ambiguous_characters() {
    for c in b"01ILOU" {
        assert!(!ALPHABET.contains(c), "{}", char::from(*c));
    }
    let distinct: HashSet<_> = ALPHABET.iter().collect();
    assert_eq!(distinct.len(), ALPHABET.len());
    assert!(
        ALPHABET
            .iter()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
}

#[test]
fn check_character_refuses_characters_outside_the_alphabet() {
    assert_eq!(check_character(b"ABC0"), None);
    assert_eq!(check_character(b"ABCO"), None);
    assert_eq!(check_character(b"abcd"), None);
    assert_eq!(check_character(b"AB-C"), None);
    // An empty body sums to zero, whose check character is the first of the alphabet.
    assert_eq!(check_character(b""), Some(b'2'));
}

#[test]
fn every_single_character_substitution_is_caught() {
    for code in seeded_codes(1, "", 20) {
        let original = code.as_bytes();
        for position in 0..original.len() {
            for &replacement in ALPHABET.iter().chain(b"01ILOU") {
                if replacement == original[position] {
                    continue;
                }
                let mut changed = original.to_vec();
                changed[position] = replacement;
                let changed = String::from_utf8(changed).unwrap();
                assert!(!is_generated(&changed, 0), "{code} -> {changed}");
            }
        }
    }
}

#[test]
fn adjacent_transpositions_are_caught_except_two_with_z() {
    let (mut swaps, mut missed) = (0u32, 0u32);
    for code in seeded_codes(2, "AB", 5_000) {
        let generated = &code.as_bytes()[2..];
        // Every neighbouring pair, the check character and the last random one included.
        for i in 0..generated.len() - 1 {
            let (a, b) = (generated[i], generated[i + 1]);
            if a == b {
                continue; // The swap changes nothing.
            }
            swaps += 1;
            let mut swapped = code.as_bytes().to_vec();
            swapped.swap(2 + i, 3 + i);
            let swapped = String::from_utf8(swapped).unwrap();
            if is_generated(&swapped, 2) {
                missed += 1;
                // Luhn mod N misses a swap when doubling (with its digit sum) moves both
                // characters by the same amount; for N = 30 only codepoints 0 and 29 do.
                let mut pair = [a, b];
                pair.sort_unstable();
                assert_eq!(&pair, b"2Z", "{code} -> {swapped}");
            }
        }
    }
    // The blind spot is real, not an artefact of the test.
    assert!(missed > 0, "no '2'/'Z' swap among {swaps}");
    // Two different neighbours are '2' and 'Z' one time in 435, so well over 90% are caught.
    let caught = f64::from(swaps - missed) / f64::from(swaps);
    assert!(caught >= 0.99, "caught {caught} of {swaps} swaps");
}

#[test]
fn is_generated_needs_the_exact_prefix_length_and_a_valid_check() {
    let code = generate("SAVE");
    assert!(is_generated(&code, 4));
    assert!(!is_generated(&code, 3));
    assert!(!is_generated(&code, 5));
    assert!(!is_generated(&code, usize::MAX));
    assert!(!is_generated(&format!("{code}2"), 4));
    assert!(!is_generated(&code.to_ascii_lowercase(), 4));
    // Imported codes: the wrong length, or characters outside the alphabet.
    assert!(!is_generated("SUMMER2024", 0));
    assert!(!is_generated("SUMMER2024OFFER", 2));
    assert!(!is_generated("", 0));
}

#[test]
fn normalize_accepts_what_a_cashier_types_or_a_scanner_reads() {
    assert_eq!(normalize("abcd-efgh 2345").unwrap(), "ABCDEFGH2345");
    assert_eq!(
        normalize("  WELC-ABCD-EFGH-2345\n").unwrap(),
        "WELCABCDEFGH2345"
    );
    assert_eq!(normalize("\tab cd\r\n").unwrap(), "ABCD");
    assert_eq!(normalize("SUMMER2024").unwrap(), "SUMMER2024");
    // Imported codes may use characters generated ones avoid.
    assert_eq!(normalize("o0i1-lu").unwrap(), "O0I1LU");
    assert_eq!(normalize(&"a".repeat(64)).unwrap(), "A".repeat(64));
    // Separators do not count towards the length.
    assert_eq!(normalize(&"AB-".repeat(32)).unwrap().len(), MAX_CODE_LEN);
}

#[test]
fn normalize_refuses_the_wrong_length_with_a_message() {
    for input in [
        "",
        "   ",
        "-- -",
        "abc",
        "a-b-c",
        &"A".repeat(65),
        &"A".repeat(10_000),
    ] {
        let message = refusal(normalize(input));
        assert!(
            message.starts_with("code: must be 4 to 64"),
            "{input:?}: {message}"
        );
        assert!(message.contains("A-Z"), "{message}");
    }
}

#[test]
fn normalize_refuses_punctuation_and_non_ascii_with_a_message() {
    for (input, shown) in [
        ("ABCD#1234", "'#'"),
        ("ABCD_1234", "'_'"),
        ("ABCD.1234", "'.'"),
        ("ABCD/1234", "'/'"),
        ("ＡＢＣＤ＃1234", "'#'"),
        ("ÄBCD1234", "'Ä'"),
        ("ABCD\u{0}1234", "'\\0'"),
    ] {
        let message = refusal(normalize(input));
        assert!(message.starts_with("code: "), "{input:?}: {message}");
        assert!(message.contains(shown), "{input:?}: {message}");
        assert!(message.contains("letters A-Z and digits 0-9"), "{message}");
    }
}

#[test]
fn display_groups_by_four_and_reads_back() {
    assert_eq!(display("ABCDEFGH2345"), "ABCD-EFGH-2345");
    assert_eq!(display("ABCDEFGH23456"), "ABCD-EFGH-2345-6");
    assert_eq!(display("ABCD"), "ABCD");
    assert_eq!(display("ABC"), "ABC");
    assert_eq!(display(""), "");
    for prefix in ["", "SAVE", "HAPPY725"] {
        for code in seeded_codes(3, prefix, 100) {
            assert_eq!(normalize(&display(&code)).unwrap(), code);
        }
    }
}

#[test]
fn a_batch_of_a_hundred_thousand_is_distinct_and_valid() {
    let codes = generate_batch("B", 100_000);
    assert_eq!(codes.len(), 100_000);
    let distinct: HashSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), codes.len());
    assert!(
        codes
            .iter()
            .all(|c| c.starts_with('B') && is_generated(c, 1))
    );
    assert!(generate_batch("B", 0).is_empty());
}

#[test]
fn check_prefix_accepts_up_to_eight_alphabet_characters() {
    for prefix in ["", "W", "SAVE", "HAPPY725", "23456789", "XYZ"] {
        check_prefix(prefix).unwrap();
    }
    for prefix in [
        "SPRING261",
        "welc",
        "W0",
        "OFF",
        "LIST",
        "UP",
        "A-B",
        "A B",
        "É",
    ] {
        let message = refusal(check_prefix(prefix));
        assert!(message.starts_with("prefix: "), "{prefix:?}: {message}");
        assert!(
            message.contains("23456789ABCDEFGHJKMNPQRSTVWXYZ"),
            "{message}"
        );
    }
}

#[test]
fn check_id_accepts_letters_digits_dashes_underscores_and_dots() {
    for id in ["a", "WELCOME10", "spring-2026_v1.2", "0", &"x".repeat(64)] {
        check_id("id", id).unwrap();
    }
    for id in ["", &"x".repeat(65), "a b", "a/b", "a:b", "é", "a\n", "🙂"] {
        let message = refusal(check_id("batch", id));
        assert!(
            message.starts_with("batch: must be 1 to 64"),
            "{id:?}: {message}"
        );
    }
}

proptest! {
    #[test]
    fn normalize_never_panics_and_is_idempotent(
        input in prop_oneof![any::<String>(), "[ a-zA-Z0-9\\-]{0,80}", "[ -~]{0,70}"],
    ) {
        if let Ok(code) = normalize(&input) {
            prop_assert!((MIN_CODE_LEN..=MAX_CODE_LEN).contains(&code.len()));
            prop_assert!(code.bytes().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
            prop_assert_eq!(normalize(&code).unwrap(), code.clone());
            prop_assert_eq!(normalize(&display(&code)).unwrap(), code);
        }
    }
}

#[test]
fn full_width_characters_from_a_chinese_input_method_read_as_ascii() {
    assert_eq!(normalize("ＡＢＣＤ－２３４５").unwrap(), "ABCD2345");
    assert_eq!(normalize("ａｂｃｄ　ｅｆｇｈ").unwrap(), "ABCDEFGH");
}

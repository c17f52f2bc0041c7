use super::*;

fn draw() -> LuckyDraw {
    LuckyDraw {
        id: "SPRING".into(),
        name: "Spring draw".into(),
        cost_points: 50,
        prizes: vec![
            Prize {
                id: "phone".into(),
                kind: PrizeKind::Gift {
                    sku: "PHONE-1".into(),
                },
                odds_ppm: 1_000,
                stock: Some(20),
            },
            Prize {
                id: "coupon".into(),
                kind: PrizeKind::Coupon {
                    template: "TEN".into(),
                },
                odds_ppm: 200_000,
                stock: None,
            },
            Prize {
                id: "points".into(),
                kind: PrizeKind::Points { points: 100 },
                odds_ppm: 300_000,
                stock: None,
            },
        ],
        limit: None,
        budget_points: Some(1_000_000),
        starts_ms: 0,
        ends_ms: None,
        time_zone: "Asia/Shanghai".into(),
    }
}

#[test]
fn a_draw_that_cannot_run_is_refused_naming_the_field() {
    assert!(draw().validate().is_ok());
    let refused = |f: fn(&mut LuckyDraw), field: &str| {
        let mut d = draw();
        f(&mut d);
        let e = d.validate().unwrap_err();
        assert!(e.message.starts_with(field), "{field}: {}", e.message);
    };
    refused(|d| d.prizes[1].odds_ppm = 900_000, "prizes");
    refused(|d| d.prizes[0].odds_ppm = 0, "prizes[0].odds_ppm");
    refused(|d| d.prizes[1].id = "phone".into(), "prizes[1].id");
    refused(
        |d| d.prizes[2].kind = PrizeKind::Points { points: 0 },
        "prizes[2].points",
    );
    refused(|d| d.cost_points = -1, "cost_points");
    refused(|d| d.ends_ms = Some(0), "ends_ms");
    refused(|d| d.prizes.clear(), "prizes");
}

#[test]
fn the_odds_take_consecutive_rolls_in_the_order_of_the_prizes() {
    let d = draw();
    let id = |roll| d.by_odds(roll).map(|p| p.id.as_str());
    assert_eq!(id(0), Some("phone"));
    assert_eq!(id(999), Some("phone"));
    assert_eq!(id(1_000), Some("coupon"));
    assert_eq!(id(200_999), Some("coupon"));
    assert_eq!(id(201_000), Some("points"));
    assert_eq!(id(500_999), Some("points"));
    assert_eq!(id(501_000), None);
    assert_eq!(id(999_999), None);
}

#[test]
fn a_prize_out_of_stock_or_past_the_budget_gives_nothing_and_says_why() {
    let mut d = draw();
    d.budget_points = Some(150);
    let mut s = DrawState::new(d);
    assert_eq!(s.outcome(0).prize.as_deref(), Some("phone"));
    for _ in 0..20 {
        s.count("phone", true);
    }
    let gone = s.outcome(0);
    assert_eq!(
        (gone.drawn.as_deref(), gone.prize, gone.reason.as_deref()),
        (Some("phone"), None, Some("out of stock"))
    );
    assert_eq!(s.outcome(300_000).prize.as_deref(), Some("points"));
    s.count("points", true);
    let over = s.outcome(300_000);
    assert_eq!(over.reason.as_deref(), Some("over the draw's budget"));
    s.count("points", false);
    assert_eq!(s.points_awarded, 0);
}

#[test]
fn the_seed_is_committed_and_every_roll_can_be_recomputed_from_it() {
    let s = DrawState::new(draw());
    assert_eq!(
        s.seed_sha256,
        hex::encode(Sha256::digest(s.seed.as_bytes()))
    );
    assert_eq!(s.roll("e1"), roll_of(&s.seed, "e1"));
    assert_ne!(DrawState::new(draw()).seed, s.seed, "a fresh seed per draw");
    assert!(s.roll("e1") < ODDS_SCALE);
}

/// 100,000 entries with rolls from a real seed: each prize with stock to spare is won at
/// its stated odds (within five standard deviations), and the phone, whose 20 units run out
/// long before its 100 expected wins, is won exactly 20 times.
#[test]
fn a_hundred_thousand_entries_win_at_the_stated_odds_and_never_past_a_stock() {
    let mut s = DrawState::new(draw());
    s.draw.budget_points = None;
    let n = 100_000u32;
    let mut won: BTreeMap<String, u64> = BTreeMap::new();
    let mut drawn: BTreeMap<String, u64> = BTreeMap::new();
    for e in 0..n {
        let outcome = s.outcome(s.roll(&format!("entry-{e}")));
        if let Some(d) = &outcome.drawn {
            *drawn.entry(d.clone()).or_default() += 1;
        }
        if let Some(p) = &outcome.prize {
            *won.entry(p.clone()).or_default() += 1;
            s.count(p, true);
        }
    }
    for prize in &s.draw.prizes {
        let p = f64::from(prize.odds_ppm) / f64::from(ODDS_SCALE);
        let expected = f64::from(n) * p;
        let sigma = (f64::from(n) * p * (1.0 - p)).sqrt();
        let got = drawn.get(&prize.id).copied().unwrap_or(0) as f64;
        assert!(
            (got - expected).abs() <= 5.0 * sigma,
            "{}: drawn {got}, expected {expected} ± {}",
            prize.id,
            5.0 * sigma
        );
    }
    assert_eq!(won.get("phone"), Some(&20), "never past its stock");
    assert_eq!(won.get("coupon"), drawn.get("coupon"));
    assert_eq!(won.get("points"), drawn.get("points"));
}

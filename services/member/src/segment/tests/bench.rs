//! A timed refresh over a million members (ignored by default; run it on purpose).

use super::*;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn draw(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.draw() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const BENCH_CITIES: &[&str] = &[
    "Shanghai",
    "Beijing",
    "Hangzhou",
    "Shenzhen",
    "Guangzhou",
    "Chengdu",
    "Wuhan",
    "Nanjing",
    "Suzhou",
    "Xi'an",
    "Tianjin",
    "Chongqing",
];

fn bench_member(i: usize, rng: &mut Rng, now: Timestamp) -> MemberFacts {
    let mut f = MemberFacts::new(format!("m{i:07}"), now.plus_days(-(rng.below(1500) as i64)));
    if rng.chance(10) {
        f.tags.insert("vip".into());
    }
    if rng.chance(20) {
        f.tags.insert("newsletter".into());
    }
    if rng.chance(5) {
        f.tags.insert("campaign:2026-05".into());
    }
    f.tier = match rng.below(100) {
        0..50 => None,
        50..75 => Some("silver".into()),
        75..90 => Some("gold".into()),
        90..97 => Some("diamond".into()),
        _ => Some("platinum".into()),
    };
    if rng.chance(90) {
        let city = BENCH_CITIES[rng.below(BENCH_CITIES.len() as u64) as usize];
        f.attributes.insert("city".into(), city.into());
    }
    if rng.chance(70) {
        f.attributes
            .insert("age".into(), (18 + rng.below(60)).to_string());
    }
    f.consents.sms = rng.chance(60);
    f.consents.email = rng.chance(40);
    f.consents.app = rng.chance(30);
    f.channel = Some(["app", "wechat", "store", "web"][rng.below(4) as usize].into());
    f.store = Some(format!("S{:03}", rng.below(200)));
    let this_month = month_of(now);
    let mut last_order: Option<i64> = None;
    for back in (0..24u32).rev() {
        if rng.chance(25) {
            let spend = rng.below(60_000) as i64;
            f.months.push(MonthTotals {
                month: this_month - back,
                spend,
                orders: 1 + rng.below(3) as u32,
            });
            f.lifetime_spend += spend;
            f.lifetime_orders += 1;
            last_order = Some(i64::from(back) * 30 + rng.below(30) as i64);
        }
    }
    if let Some(days) = last_order {
        f.last_order_at = Some(now.plus_days(-days));
        f.first_order_at = Some(now.plus_days(-(days + rng.below(400) as i64)));
    }
    if rng.chance(80) {
        f.rfm = Some(RfmScore {
            recency: 1 + rng.below(5) as u8,
            frequency: 1 + rng.below(5) as u8,
            monetary: 1 + rng.below(5) as u8,
        });
    }
    f.churn_risk = rng.chance(15);
    f.lifecycle = STAGES[rng.below(4) as usize];
    f.erased = rng.chance(1);
    f
}

/// Runs `count` `runs` times; the fastest and the median time in milliseconds, and the count.
fn time(runs: usize, mut count: impl FnMut() -> usize) -> (f64, f64, usize) {
    let mut times = Vec::with_capacity(runs);
    let mut n = 0;
    for _ in 0..runs {
        let start = std::time::Instant::now();
        n = std::hint::black_box(count());
        times.push(start.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    (times[0], times[runs / 2], n)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn segment_over_a_million_members() {
    const MEMBERS: usize = 1_000_000;
    const RUNS: usize = 7;
    let now = now();
    let start = std::time::Instant::now();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let members: Vec<MemberFacts> = (0..MEMBERS)
        .map(|i| bench_member(i, &mut rng, now))
        .collect();
    println!(
        "built {MEMBERS} members in {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let json = json!({"all": [
        {"any": [{"tag": "vip"}, {"tier": ["gold", "diamond"]}]},
        {"spend_12m": {"gte": 100000}},
        {"not": {"churn_risk": true}},
        {"last_order": {"within_days": 90}},
        {"attribute": {"name": "city", "in": ["Shanghai", "Beijing", "Hangzhou", "Shenzhen"]}}
    ]});
    let start = std::time::Instant::now();
    let matcher = Query::parse(&json).unwrap().compile(now).unwrap();
    let compile_us = start.elapsed().as_secs_f64() * 1e6;

    let (best, median, matched) = time(RUNS, || {
        members.iter().filter(|f| matcher.matches(f)).count()
    });

    // The same predicate written by hand, as well as one would: the month window and the
    // 90-day cutoff computed once, like the compiled matcher does.
    let last = month_of(now);
    let first = last - 11;
    let cutoff = now.plus_days(-90);
    let hand = |f: &MemberFacts| {
        !f.erased
            && (f.tags.contains("vip") || matches!(f.tier.as_deref(), Some("gold" | "diamond")))
            && f.months
                .iter()
                .filter(|m| m.month >= first && m.month <= last)
                .map(|m| m.spend)
                .sum::<i64>()
                >= 100_000
            && !f.churn_risk
            && f.last_order_at.is_some_and(|t| t >= cutoff)
            && matches!(
                f.attributes.get("city").map(String::as_str),
                Some("Shanghai" | "Beijing" | "Hangzhou" | "Shenzhen")
            )
    };
    let (hand_best, hand_median, hand_matched) =
        time(RUNS, || members.iter().filter(|f| hand(f)).count());

    // And the naive closure, calling MemberFacts::spend_12m (a calendar conversion a call).
    let naive = |f: &MemberFacts| {
        !f.erased
            && (f.tags.contains("vip") || matches!(f.tier.as_deref(), Some("gold" | "diamond")))
            && f.spend_12m(now) >= 100_000
            && !f.churn_risk
            && f.last_order_at.is_some_and(|t| t >= cutoff)
            && matches!(
                f.attributes.get("city").map(String::as_str),
                Some("Shanghai" | "Beijing" | "Hangzhou" | "Shenzhen")
            )
    };
    let (naive_best, naive_median, naive_matched) =
        time(RUNS, || members.iter().filter(|f| naive(f)).count());

    assert_eq!(matched, hand_matched);
    assert_eq!(matched, naive_matched);
    println!("query: {json}");
    println!("compile: {compile_us:.1} µs");
    println!(
        "compiled matcher: {matched} of {MEMBERS} match; best {best:.1} ms, median {median:.1} ms ({:.1} ns a member)",
        best * 1e6 / MEMBERS as f64
    );
    println!(
        "hand-written closure: best {hand_best:.1} ms, median {hand_median:.1} ms; matcher/closure = {:.2} (best), {:.2} (median)",
        best / hand_best,
        median / hand_median
    );
    println!(
        "naive closure (MemberFacts::spend_12m): best {naive_best:.1} ms, median {naive_median:.1} ms; matcher/naive = {:.2}",
        best / naive_best
    );
}

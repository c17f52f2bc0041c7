use super::*;
use proptest::prelude::*;

/// Noon UTC on a date: the controlled clock of these tests.
fn at(date: &str) -> Timestamp {
    let d = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").unwrap();
    Timestamp::from_datetime(d.and_hms_opt(12, 0, 0).unwrap().and_utc())
}

fn tier(code: &str, threshold: i64, multiplier_bp: u32) -> TierDef {
    TierDef {
        code: code.into(),
        name: code.to_uppercase(),
        threshold,
        earn_multiplier_bp: multiplier_bp,
        benefits: BTreeMap::new(),
    }
}

/// The issue's example: silver 5,000 / gold 10,000 / diamond 30,000 (currency units, so
/// minor units times 100) of rolling 12-month spend; kept 12 months, 30 days' grace.
fn issue_policy() -> TierPolicy {
    TierPolicy {
        measure: Measure::Spend12m,
        tiers: vec![
            tier("silver", 500_000, 12_500),
            tier("gold", 1_000_000, 15_000),
            tier("diamond", 3_000_000, 20_000),
        ],
        period_months: 12,
        grace_days: 30,
        approval: Approval::None,
    }
}

fn with_approval(approval: Approval) -> TierPolicy {
    TierPolicy {
        approval,
        ..issue_policy()
    }
}

/// A member placed in `code` at `since` by an upgrade with `policy`.
fn member_in(policy: &TierPolicy, code: &str, since: Timestamp) -> TierState {
    let threshold = policy.tier(code).unwrap().threshold;
    let policy = TierPolicy {
        approval: Approval::None,
        ..policy.clone()
    };
    let e = evaluate(&policy, &TierState::new(since), threshold, since);
    assert_eq!(e.state.tier.as_deref(), Some(code));
    e.state
}

const SILVER: i64 = 500_000;
const GOLD: i64 = 1_000_000;
const DIAMOND: i64 = 3_000_000;

#[test]
fn a_member_below_every_threshold_has_no_tier() {
    let policy = issue_policy();
    let e = evaluate(
        &policy,
        &TierState::new(at("2026-01-01")),
        SILVER - 1,
        at("2026-01-02"),
    );
    assert_eq!(e.decision, Decision::Unchanged);
    assert!(e.is_unchanged());
    assert_eq!(e.state, TierState::new(at("2026-01-01")));
    assert_eq!(earn_multiplier_bp(&policy, &e.state), ONE_X_BP);
}

#[test]
fn upgrades_happen_at_once_and_jump_straight_to_the_qualifying_tier() {
    let policy = issue_policy();
    let jan = at("2026-01-15");
    let e = evaluate(&policy, &TierState::new(at("2026-01-01")), SILVER, jan);
    assert_eq!(
        e.decision,
        Decision::Upgrade {
            from: None,
            to: "silver".into()
        }
    );
    assert_eq!(e.state.since, jan);
    assert_eq!(e.state.review_at, Some(at("2027-01-15")));
    assert_eq!(earn_multiplier_bp(&policy, &e.state), 12_500);

    // Silver straight to diamond, skipping gold; a new period starts.
    let mar = at("2026-03-10");
    let e = evaluate(&policy, &e.state, DIAMOND + 1, mar);
    assert_eq!(
        e.decision,
        Decision::Upgrade {
            from: Some("silver".into()),
            to: "diamond".into()
        }
    );
    assert_eq!(e.state.review_at, Some(at("2027-03-10")));
    assert_eq!(earn_multiplier_bp(&policy, &e.state), 20_000);
    let moves: Vec<_> = e
        .state
        .history
        .iter()
        .map(|t| (t.from.clone(), t.to.clone(), t.cause))
        .collect();
    assert_eq!(
        moves,
        vec![
            (None, Some("silver".into()), Cause::Measure),
            (
                Some("silver".into()),
                Some("diamond".into()),
                Cause::Measure
            ),
        ]
    );
}

#[test]
fn the_issue_example_on_real_facts() {
    // Spend builds up over months; the measure is MemberFacts::spend_12m at each run.
    let policy = issue_policy();
    let mut facts = MemberFacts::new("m1", at("2026-01-01"));
    let mut state = TierState::new(at("2026-01-01"));
    let run = |facts: &MemberFacts, state: &mut TierState, now: Timestamp| {
        let e = evaluate(&policy, state, policy.measure_of(facts, 0, now), now);
        *state = e.state;
        e.decision
    };
    facts.add_order(at("2026-01-20"), 300_000);
    assert_eq!(
        run(&facts, &mut state, at("2026-01-21")),
        Decision::Unchanged
    );
    facts.add_order(at("2026-02-20"), 300_000);
    assert!(matches!(
        run(&facts, &mut state, at("2026-02-21")),
        Decision::Upgrade { to, .. } if to == "silver"
    ));
    facts.add_order(at("2026-04-20"), 500_000);
    assert!(matches!(
        run(&facts, &mut state, at("2026-04-21")),
        Decision::Upgrade { to, .. } if to == "gold"
    ));
    facts.add_order(at("2026-06-10"), 500_000);
    assert_eq!(
        run(&facts, &mut state, at("2026-06-11")),
        Decision::Unchanged
    );
    // No more orders. By 2027-04-20 only the June order is left in the window (silver
    // level), but gold is kept until its review on 2027-04-21.
    assert_eq!(facts.spend_12m(at("2027-04-20")), 500_000);
    assert_eq!(
        run(&facts, &mut state, at("2027-04-20")),
        Decision::Unchanged
    );
    assert_eq!(state.tier.as_deref(), Some("gold"));
    assert_eq!(
        run(&facts, &mut state, at("2027-04-21")),
        Decision::GraceStarted {
            until: at("2027-05-21")
        }
    );
    assert_eq!(
        run(&facts, &mut state, at("2027-05-20")),
        Decision::Unchanged
    );
    assert_eq!(
        run(&facts, &mut state, at("2027-05-21")),
        Decision::Downgrade {
            from: "gold".into(),
            to: Some("silver".into())
        }
    );
    assert_eq!(state.review_at, Some(at("2028-05-21")));
    assert_eq!(earn_multiplier_bp(&policy, &state), 12_500);
    // The June order leaves the window in 2027-06; silver is kept until the next review,
    // then grace, then no tier.
    assert_eq!(
        run(&facts, &mut state, at("2027-07-01")),
        Decision::Unchanged
    );
    assert!(matches!(
        run(&facts, &mut state, at("2028-05-21")),
        Decision::GraceStarted { .. }
    ));
    assert_eq!(
        run(&facts, &mut state, at("2028-06-20")),
        Decision::Downgrade {
            from: "silver".into(),
            to: None
        }
    );
    assert_eq!(state.review_at, None);
    assert_eq!(earn_multiplier_bp(&policy, &state), ONE_X_BP);
    assert_eq!(state.history.len(), 4);
}

#[test]
fn no_downgrade_before_the_review() {
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let a_minute_before_review = at("2027-01-15").plus_secs(-60);
    for now in [at("2026-01-16"), at("2026-06-30"), a_minute_before_review] {
        let e = evaluate(&policy, &state, 0, now);
        assert_eq!(e.decision, Decision::Unchanged, "{}", now.to_rfc3339());
        assert_eq!(e.state, state);
    }
}

#[test]
fn a_review_below_the_tier_starts_grace_and_keeps_the_tier_meanwhile() {
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let review = at("2027-01-15");
    let e = evaluate(&policy, &state, SILVER, review);
    assert_eq!(
        e.decision,
        Decision::GraceStarted {
            until: at("2027-02-14")
        }
    );
    assert_eq!(e.state.tier.as_deref(), Some("gold"));
    assert_eq!(earn_multiplier_bp(&policy, &e.state), 15_000);
    // During grace nothing more happens; a second run does not restart it.
    let again = evaluate(&policy, &e.state, SILVER, at("2027-02-13"));
    assert_eq!(again.decision, Decision::Unchanged);
    assert_eq!(again.state, e.state);
}

#[test]
fn grace_is_counted_from_when_the_review_ran() {
    // The job ran three days late: the member still gets its full 30 days.
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let e = evaluate(&policy, &state, 0, at("2027-01-18"));
    assert_eq!(
        e.decision,
        Decision::GraceStarted {
            until: at("2027-02-17")
        }
    );
}

#[test]
fn a_review_that_finds_the_member_qualifying_renews_the_period_from_the_review_date() {
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    // Run two days late: the next review is still on the anniversary.
    let e = evaluate(&policy, &state, GOLD, at("2027-01-17"));
    assert_eq!(e.decision, Decision::Requalified);
    assert_eq!(e.state.review_at, Some(at("2028-01-15")));
    assert_eq!(e.state.since, at("2026-01-15"));
    assert!(e.state.history.len() == 1);
}

#[test]
fn a_review_missed_for_a_whole_period_renews_from_now() {
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let e = evaluate(&policy, &state, GOLD, at("2028-03-01"));
    assert_eq!(e.decision, Decision::Requalified);
    assert_eq!(e.state.review_at, Some(at("2029-03-01")));
}

#[test]
fn requalifying_within_grace_clears_it() {
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let grace = evaluate(&policy, &state, SILVER, at("2027-01-15")).state;
    let e = evaluate(&policy, &grace, GOLD, at("2027-02-01"));
    assert_eq!(e.decision, Decision::Requalified);
    assert_eq!(e.state.grace_until, None);
    assert_eq!(e.state.tier.as_deref(), Some("gold"));
    assert_eq!(e.state.review_at, Some(at("2028-01-15")));
    // And the grace's end passes without a downgrade.
    let later = evaluate(&policy, &e.state, SILVER, at("2027-03-01"));
    assert_eq!(later.decision, Decision::Unchanged);
}

#[test]
fn qualifying_higher_during_grace_upgrades() {
    let policy = issue_policy();
    let state = member_in(&policy, "silver", at("2026-01-15"));
    let grace = evaluate(&policy, &state, 0, at("2027-01-15")).state;
    let e = evaluate(&policy, &grace, DIAMOND, at("2027-01-20"));
    assert_eq!(
        e.decision,
        Decision::Upgrade {
            from: Some("silver".into()),
            to: "diamond".into()
        }
    );
    assert_eq!(e.state.grace_until, None);
    assert_eq!(e.state.review_at, Some(at("2028-01-20")));
}

#[test]
fn after_grace_the_member_drops_to_the_tier_its_measure_qualifies_for() {
    let policy = issue_policy();
    let state = member_in(&policy, "diamond", at("2026-01-15"));
    let grace = evaluate(&policy, &state, SILVER, at("2027-01-15")).state;
    let before_end = evaluate(&policy, &grace, SILVER, at("2027-02-14").plus_secs(-1));
    assert_eq!(before_end.decision, Decision::Unchanged);
    // Diamond straight to silver (not one level to gold): silver is what the measure reaches.
    let e = evaluate(&policy, &grace, SILVER, at("2027-02-14"));
    assert_eq!(
        e.decision,
        Decision::Downgrade {
            from: "diamond".into(),
            to: Some("silver".into())
        }
    );
    assert_eq!(e.state.since, at("2027-02-14"));
    assert_eq!(e.state.review_at, Some(at("2028-02-14")));
    assert_eq!(e.state.grace_until, None);
    assert_eq!(earn_multiplier_bp(&policy, &e.state), 12_500);
    // The measure is read when grace ends, not when it started: it fell further meanwhile.
    let e = evaluate(&policy, &grace, 0, at("2027-03-01"));
    assert_eq!(
        e.decision,
        Decision::Downgrade {
            from: "diamond".into(),
            to: None
        }
    );
    assert_eq!(e.state.review_at, None);
}

#[test]
fn without_grace_the_review_downgrades_at_once() {
    let policy = TierPolicy {
        grace_days: 0,
        ..issue_policy()
    };
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let e = evaluate(&policy, &state, SILVER, at("2027-01-15"));
    assert_eq!(
        e.decision,
        Decision::Downgrade {
            from: "gold".into(),
            to: Some("silver".into())
        }
    );
}

#[test]
fn a_month_end_period_ends_at_the_shorter_months_end() {
    let policy = TierPolicy {
        period_months: 1,
        ..issue_policy()
    };
    let state = member_in(&policy, "gold", at("2026-01-31"));
    assert_eq!(state.review_at, Some(at("2026-02-28")));
}

#[test]
fn an_upgrade_needing_approval_waits_once_and_applies_on_approval() {
    let policy = with_approval(Approval::Upgrades);
    let start = TierState::new(at("2026-01-01"));
    let e = evaluate(&policy, &start, GOLD, at("2026-02-01"));
    let expected = PendingChange {
        to: Some("gold".into()),
        kind: ChangeKind::Upgrade,
        requested_at: at("2026-02-01"),
        measure: GOLD,
    };
    assert_eq!(
        e.decision,
        Decision::AwaitingApproval {
            change: expected.clone()
        }
    );
    assert_eq!(e.state.tier, None);
    assert_eq!(e.state.pending, Some(expected.clone()));
    assert_eq!(earn_multiplier_bp(&policy, &e.state), ONE_X_BP);

    // The next runs do not ask again.
    let again = evaluate(&policy, &e.state, GOLD + 5, at("2026-02-02"));
    assert!(again.is_unchanged());
    assert_eq!(again.state, e.state);

    let approved = approve(&policy, &again.state, at("2026-02-03")).unwrap();
    assert_eq!(
        approved.decision,
        Decision::Upgrade {
            from: None,
            to: "gold".into()
        }
    );
    assert_eq!(approved.state.tier.as_deref(), Some("gold"));
    assert_eq!(approved.state.pending, None);
    assert_eq!(approved.state.since, at("2026-02-03"));
    assert_eq!(approved.state.review_at, Some(at("2027-02-03")));
    assert_eq!(approved.state.history[0].cause, Cause::Approval);
    assert_eq!(approved.state.history[0].measure, GOLD);
    assert_eq!(earn_multiplier_bp(&policy, &approved.state), 15_000);
}

#[test]
fn downgrades_do_not_wait_when_only_upgrades_need_approval() {
    let policy = with_approval(Approval::Upgrades);
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let grace = evaluate(&policy, &state, 0, at("2027-01-15")).state;
    let e = evaluate(&policy, &grace, 0, at("2027-02-14"));
    assert!(matches!(e.decision, Decision::Downgrade { .. }));
}

#[test]
fn a_rejected_upgrade_is_not_asked_again_until_the_next_review_or_another_target() {
    let policy = with_approval(Approval::Upgrades);
    let silver = member_in(&policy, "silver", at("2026-01-15"));
    let asked = evaluate(&policy, &silver, GOLD, at("2026-03-01")).state;
    let rejected = reject(&policy, &asked, at("2026-03-02")).unwrap();
    assert!(matches!(
        &rejected.decision,
        Decision::Rejected { change } if change.to.as_deref() == Some("gold")
    ));
    assert_eq!(rejected.state.tier.as_deref(), Some("silver"));
    assert_eq!(rejected.state.pending, None);
    assert_eq!(
        rejected.state.rejected.as_ref().map(|r| r.until),
        Some(at("2027-01-15"))
    );

    // Still gold-level: not asked again.
    let quiet = evaluate(&policy, &rejected.state, GOLD, at("2026-06-01"));
    assert!(quiet.is_unchanged());

    // Diamond-level: a different target, asked.
    let higher = evaluate(&policy, &rejected.state, DIAMOND, at("2026-07-01"));
    assert!(matches!(
        &higher.decision,
        Decision::AwaitingApproval { change } if change.to.as_deref() == Some("diamond")
    ));

    // At the next review the member keeps silver (period renewed) and gold is asked again.
    let review = evaluate(&policy, &rejected.state, GOLD, at("2027-01-15"));
    assert!(matches!(
        &review.decision,
        Decision::AwaitingApproval { change } if change.to.as_deref() == Some("gold")
    ));
    assert_eq!(review.state.review_at, Some(at("2028-01-15")));
    assert_eq!(review.state.rejected, None);
}

#[test]
fn a_rejected_upgrade_for_a_member_without_a_tier_waits_a_period() {
    let policy = with_approval(Approval::Upgrades);
    let asked = evaluate(
        &policy,
        &TierState::new(at("2026-01-01")),
        GOLD,
        at("2026-03-01"),
    );
    let rejected = reject(&policy, &asked.state, at("2026-03-01"))
        .unwrap()
        .state;
    assert!(evaluate(&policy, &rejected, GOLD, at("2027-02-28")).is_unchanged());
    let e = evaluate(&policy, &rejected, GOLD, at("2027-03-01"));
    assert!(matches!(e.decision, Decision::AwaitingApproval { .. }));
}

#[test]
fn a_pending_change_that_no_longer_applies_is_withdrawn_or_replaced() {
    let policy = with_approval(Approval::Upgrades);
    let asked = evaluate(
        &policy,
        &TierState::new(at("2026-01-01")),
        GOLD,
        at("2026-03-01"),
    )
    .state;

    // A refund took the member below gold and silver: nothing to ask any more.
    let fell = evaluate(&policy, &asked, 0, at("2026-03-05"));
    assert_eq!(fell.decision, Decision::Unchanged);
    assert_eq!(fell.withdrawn, asked.pending);
    assert_eq!(fell.state.pending, None);
    assert!(!fell.is_unchanged());

    // The member now reaches diamond: the gold request is replaced by a diamond one.
    let rose = evaluate(&policy, &asked, DIAMOND, at("2026-03-05"));
    assert_eq!(rose.withdrawn, asked.pending);
    assert!(matches!(
        &rose.decision,
        Decision::AwaitingApproval { change } if change.to.as_deref() == Some("diamond")
    ));
}

#[test]
fn a_downgrade_needing_approval_waits_and_a_requalification_withdraws_it() {
    let policy = with_approval(Approval::Downgrades);
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let grace = evaluate(&policy, &state, SILVER, at("2027-01-15")).state;
    let asked = evaluate(&policy, &grace, SILVER, at("2027-02-14"));
    assert!(matches!(
        &asked.decision,
        Decision::AwaitingApproval { change }
            if change.kind == ChangeKind::Downgrade && change.to.as_deref() == Some("silver")
    ));
    assert_eq!(asked.state.tier.as_deref(), Some("gold"));
    assert!(evaluate(&policy, &asked.state, SILVER, at("2027-02-20")).is_unchanged());

    // Spend fell further: the request follows the measure.
    let lower = evaluate(&policy, &asked.state, 0, at("2027-02-20"));
    assert!(matches!(
        &lower.decision,
        Decision::AwaitingApproval { change } if change.to.is_none()
    ));
    assert!(lower.withdrawn.is_some());

    // Spend came back: the member keeps gold, the request is withdrawn.
    let back = evaluate(&policy, &asked.state, GOLD, at("2027-02-20"));
    assert_eq!(back.decision, Decision::Requalified);
    assert_eq!(back.withdrawn, asked.state.pending);
    assert_eq!(back.state.grace_until, None);
    assert_eq!(back.state.pending, None);
}

#[test]
fn an_approved_downgrade_moves_and_a_rejected_one_keeps_the_tier_another_period() {
    let policy = with_approval(Approval::Both);
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let grace = evaluate(&policy, &state, SILVER, at("2027-01-15")).state;
    let asked = evaluate(&policy, &grace, SILVER, at("2027-02-14")).state;

    let approved = approve(&policy, &asked, at("2027-02-16")).unwrap();
    assert_eq!(
        approved.decision,
        Decision::Downgrade {
            from: "gold".into(),
            to: Some("silver".into())
        }
    );
    assert_eq!(approved.state.review_at, Some(at("2028-02-16")));

    let rejected = reject(&policy, &asked, at("2027-02-16")).unwrap().state;
    assert_eq!(rejected.tier.as_deref(), Some("gold"));
    assert_eq!(rejected.grace_until, None);
    assert_eq!(rejected.review_at, Some(at("2028-02-16")));
    // Nothing until that review; then grace again, and the downgrade is asked again after it.
    assert!(evaluate(&policy, &rejected, SILVER, at("2027-12-01")).is_unchanged());
    let grace = evaluate(&policy, &rejected, SILVER, at("2028-02-16"));
    assert!(matches!(grace.decision, Decision::GraceStarted { .. }));
    let asked = evaluate(&policy, &grace.state, SILVER, at("2028-03-17"));
    assert!(matches!(asked.decision, Decision::AwaitingApproval { .. }));
}

#[test]
fn approving_or_rejecting_with_nothing_pending_is_not_found() {
    let policy = with_approval(Approval::Both);
    let state = TierState::new(at("2026-01-01"));
    let err = approve(&policy, &state, at("2026-01-02")).unwrap_err();
    assert_eq!(err.code, ErrorCode::NoPendingTierChange);
    let err = reject(&policy, &state, at("2026-01-02")).unwrap_err();
    assert_eq!(err.code, ErrorCode::NoPendingTierChange);
}

#[test]
fn approving_a_tier_the_policy_no_longer_has_is_refused() {
    let policy = with_approval(Approval::Upgrades);
    let asked = evaluate(
        &policy,
        &TierState::new(at("2026-01-01")),
        GOLD,
        at("2026-03-01"),
    )
    .state;
    let mut without_gold = policy.clone();
    without_gold.tiers.retain(|t| t.code != "gold");
    let err = approve(&without_gold, &asked, at("2026-03-02")).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(
        err.message.contains("no longer in the policy"),
        "{}",
        err.message
    );
}

#[test]
fn a_tier_removed_from_the_policy_is_replaced_by_the_qualifying_one() {
    let policy = issue_policy();
    let state = member_in(&policy, "gold", at("2026-01-15"));
    let mut renamed = policy.clone();
    renamed.tiers[1].code = "gold2".into();
    let e = evaluate(&renamed, &state, GOLD, at("2026-02-01"));
    assert_eq!(
        e.decision,
        Decision::Reassigned {
            from: "gold".into(),
            to: Some("gold2".into())
        }
    );
    assert_eq!(
        e.state.history.last().map(|t| t.cause),
        Some(Cause::PolicyChange)
    );
    assert_eq!(earn_multiplier_bp(&policy, &state), 15_000);
    assert_eq!(earn_multiplier_bp(&renamed, &state), ONE_X_BP);
}

#[test]
fn history_keeps_the_last_twenty_transitions() {
    let policy = TierPolicy {
        grace_days: 0,
        period_months: 1,
        ..issue_policy()
    };
    let mut state = TierState::new(at("2026-01-01"));
    let mut now = at("2026-01-01");
    for i in 0..30 {
        let measure = if i % 2 == 0 { GOLD } else { 0 };
        state = evaluate(&policy, &state, measure, now).state;
        now = now.plus_days(40);
    }
    assert_eq!(state.history.len(), HISTORY_LIMIT);
    assert_eq!(state.history.last().map(|t| t.at), Some(now.plus_days(-40)));
}

#[test]
fn validation_names_the_problem() {
    type Mutate = fn(&mut TierPolicy);
    let cases: Vec<(Mutate, &str)> = vec![
        (|p| p.tiers.clear(), "at least one tier"),
        (
            |p| {
                p.tiers = (0..21)
                    .map(|i| tier(&format!("t{i}"), i, ONE_X_BP))
                    .collect()
            },
            "at most 20 tiers",
        ),
        (|p| p.tiers[1].threshold = SILVER, "strictly ascending"),
        (|p| p.tiers[2].threshold = 1, "strictly ascending"),
        (|p| p.tiers[2].code = "silver".into(), "appears twice"),
        (
            |p| p.tiers[0].code = "".into(),
            "must be 1 to 32 of a-z 0-9 _ -",
        ),
        (
            |p| p.tiers[0].code = "Gold".into(),
            "must be 1 to 32 of a-z 0-9 _ -",
        ),
        (|p| p.tiers[0].code = "gold tier".into(), "must be 1 to 32"),
        (|p| p.tiers[0].code = "x".repeat(33), "must be 1 to 32"),
        (|p| p.tiers[0].name = "  ".into(), "needs a name"),
        (|p| p.tiers[0].threshold = -1, "must not be negative"),
        (
            |p| p.tiers[0].earn_multiplier_bp = 0,
            "earn_multiplier_bp must be 1 to 100000",
        ),
        (
            |p| p.tiers[0].earn_multiplier_bp = 100_001,
            "earn_multiplier_bp",
        ),
        (
            |p| {
                p.tiers[0].benefits.insert(String::new(), "x".into());
            },
            "benefit name",
        ),
        (
            |p| {
                p.tiers[0].benefits.insert("note".into(), "x".repeat(501));
            },
            "benefit value",
        ),
        (|p| p.period_months = 0, "period_months must be 1 to 120"),
        (|p| p.period_months = 121, "period_months"),
        (|p| p.grace_days = 3651, "grace_days must be at most 3650"),
    ];
    assert!(issue_policy().validate().is_ok());
    for (mutate, expected) in cases {
        let mut policy = issue_policy();
        mutate(&mut policy);
        let err = policy.validate().unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidArgument);
        assert!(
            err.message.contains(expected),
            "{:?} should mention {expected:?}",
            err.message
        );
    }
    // Edges that are fine: a base tier at 0, a 10x multiplier, a multiplier under 1x,
    // codes with every allowed character, no grace.
    let mut policy = issue_policy();
    policy.tiers[0].threshold = 0;
    policy.tiers[0].code = "a-z_09".into();
    policy.tiers[1].earn_multiplier_bp = MAX_MULTIPLIER_BP;
    policy.tiers[2].earn_multiplier_bp = 1;
    policy.grace_days = 0;
    policy.period_months = 120;
    assert!(policy.validate().is_ok());
}

#[test]
fn wire_names_of_the_enums() {
    use serde::de::IntoDeserializer;
    use serde::de::value::Error;
    let measure = |s: &str| Measure::deserialize(s.into_deserializer()).map_err(|e: Error| e);
    assert_eq!(measure("spend_12m").unwrap(), Measure::Spend12m);
    assert_eq!(measure("points").unwrap(), Measure::Points);
    assert!(measure("spend12m").is_err());
    let approval = |s: &str| Approval::deserialize(s.into_deserializer()).map_err(|e: Error| e);
    assert_eq!(approval("none").unwrap(), Approval::None);
    assert_eq!(approval("upgrades").unwrap(), Approval::Upgrades);
    assert_eq!(approval("downgrades").unwrap(), Approval::Downgrades);
    assert_eq!(approval("both").unwrap(), Approval::Both);
}

#[test]
fn policies_and_states_round_trip() {
    let policy = with_approval(Approval::Both);
    let bytes = postcard::to_stdvec(&policy).unwrap();
    assert_eq!(postcard::from_bytes::<TierPolicy>(&bytes).unwrap(), policy);
    let state = evaluate(
        &policy,
        &TierState::new(at("2026-01-01")),
        GOLD,
        at("2026-01-02"),
    )
    .state;
    let bytes = postcard::to_stdvec(&state).unwrap();
    assert_eq!(postcard::from_bytes::<TierState>(&bytes).unwrap(), state);
}

fn policy_strategy() -> impl Strategy<Value = TierPolicy> {
    (
        prop::collection::vec(1i64..2_000_000, 1..5),
        0usize..4,
        0u32..60,
        1u32..24,
        0i64..500_000,
    )
        .prop_map(|(steps, approval, grace_days, period_months, base)| {
            let mut threshold = base;
            let tiers = steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    let t = tier(&format!("t{i}"), threshold, ONE_X_BP + i as u32 * 1000);
                    threshold += step;
                    t
                })
                .collect();
            TierPolicy {
                measure: Measure::Spend12m,
                tiers,
                period_months,
                grace_days,
                approval: [
                    Approval::None,
                    Approval::Upgrades,
                    Approval::Downgrades,
                    Approval::Both,
                ][approval],
            }
        })
}

#[derive(Debug, Clone)]
enum Op {
    Evaluate {
        measure: i64,
        days: i64,
    },
    Approve,
    Reject,
    /// The tenant changes its policy mid-way.
    Swap,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (-1_000i64..8_000_000, 0i64..200)
            .prop_map(|(measure, days)| Op::Evaluate { measure, days }),
        1 => Just(Op::Approve),
        1 => Just(Op::Reject),
        1 => Just(Op::Swap),
    ]
}

proptest! {
    #[test]
    fn evaluate_approve_and_reject_never_panic_and_keep_the_tier_in_the_policy(
        first in policy_strategy(),
        second in policy_strategy(),
        ops in prop::collection::vec(op_strategy(), 1..60),
    ) {
        prop_assert!(first.validate().is_ok());
        let mut policy = &first;
        let mut now = at("2026-01-01");
        let mut state = TierState::new(now);
        for op in ops {
            let outcome = match op {
                Op::Evaluate { measure, days } => {
                    now = now.plus_days(days);
                    Some(evaluate(policy, &state, measure, now))
                }
                Op::Approve => approve(policy, &state, now).ok(),
                Op::Reject => reject(policy, &state, now).ok(),
                Op::Swap => {
                    policy = if std::ptr::eq(policy, &first) { &second } else { &first };
                    None
                }
            };
            let Some(e) = outcome else { continue };
            // Nothing reported means nothing changed, and the other way round.
            prop_assert_eq!(e.is_unchanged(), e.state == state);
            if let Some(code) = &e.state.tier {
                prop_assert!(policy.tier(code).is_some(), "{code} is not in the policy");
                prop_assert!(e.state.review_at.is_some());
            }
            if let Some(pending) = &e.state.pending {
                prop_assert!(policy.approval.requires(pending.kind));
            }
            prop_assert!(e.state.history.len() <= HISTORY_LIMIT);
            let bp = earn_multiplier_bp(policy, &e.state);
            prop_assert!((1..=MAX_MULTIPLIER_BP).contains(&bp));
            state = e.state;
        }
    }

    #[test]
    fn unvalidated_policies_and_states_never_panic(
        thresholds in prop::collection::vec(any::<i64>(), 0..5),
        period_months in any::<u32>(),
        grace_days in any::<u32>(),
        measure in any::<i64>(),
        now in any::<i64>(),
        review_at in proptest::option::of(any::<i64>()),
        grace_until in proptest::option::of(any::<i64>()),
        code in proptest::option::of(0usize..6),
    ) {
        let policy = TierPolicy {
            measure: Measure::Points,
            tiers: thresholds.iter().map(|t| tier("t", *t, 0)).collect(),
            period_months,
            grace_days,
            approval: Approval::Both,
        };
        let _ = policy.validate();
        let state = TierState {
            tier: code.map(|c| if c == 5 { "gone".to_string() } else { "t".to_string() }),
            since: Timestamp(0),
            review_at: review_at.map(Timestamp),
            grace_until: grace_until.map(Timestamp),
            pending: None,
            rejected: None,
            history: Vec::new(),
        };
        let e = evaluate(&policy, &state, measure, Timestamp(now));
        let _ = approve(&policy, &e.state, Timestamp(now));
        let _ = reject(&policy, &e.state, Timestamp(now));
        let _ = earn_multiplier_bp(&policy, &e.state);
    }
}

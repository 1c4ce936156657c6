//! A mention's status, and every way it may change, as plain functions.
//!
//! The store reads a row, asks these functions what the status becomes, and writes it: the rules
//! live here, once, where a unit test can walk every case, and both engines follow them. What a
//! change sets off ([`change`]: a notification event, the `/api/deleted.json` record) is carried
//! out in each engine's triggers, inside the same transaction as the write; the store suite
//! (`store::mentions::tests::triggers_follow_the_lifecycle`) holds both engines' triggers to [`change`]
//! for every pair of statuses.

use crate::model::Status;

/// A moderator's standing decision on one mention (the `moderation` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Moderation {
    Approved,
    Rejected,
    /// Hidden with its domain's block; lifting the block gives back the status before it.
    Blocked,
}

impl Moderation {
    pub fn parse(word: Option<&str>) -> Option<Moderation> {
        match word? {
            "approved" => Some(Moderation::Approved),
            "rejected" => Some(Moderation::Rejected),
            "blocked" => Some(Moderation::Blocked),
            _ => None,
        }
    }
}

/// The source links to the post (checked now): a moderator's decision stands; a mention once
/// held stays held until someone approves it; a published one stays published; a new one is
/// held when moderation holds new mentions (`hold_new`), else published.
pub fn after_verification(
    current: Status,
    moderation: Option<Moderation>,
    hold_new: bool,
) -> Status {
    match (moderation, current) {
        (Some(Moderation::Rejected | Moderation::Blocked), _) => Status::Rejected,
        (Some(Moderation::Approved), _) => Status::Verified,
        (None, Status::Held) => Status::Held,
        (None, Status::Verified) => Status::Verified,
        (None, _) if hold_new => Status::Held,
        (None, _) => Status::Verified,
    }
}

/// The source no longer supports the mention. `link_gone`: the page says so (no link, 410, a
/// second 404 in a row); otherwise the refusal says nothing about the link (e.g. the page grew
/// too large). A rejected mention stays rejected; one never verified is rejected; a verified
/// one is deleted only when its link is gone, and otherwise kept as it was.
pub fn after_refusal(current: Status, ever_verified: bool, link_gone: bool) -> Status {
    match current {
        Status::Rejected => Status::Rejected,
        _ if !ever_verified => Status::Rejected,
        _ if link_gone => Status::Deleted,
        kept => kept,
    }
}

/// Approved by hand: a held or rejected mention whose link was verified is published; one that
/// was never verified keeps its status (it is published once its check passes, the approval
/// standing).
pub fn after_approval(current: Status, ever_verified: bool) -> Status {
    match current {
        Status::Held | Status::Rejected if ever_verified => Status::Verified,
        other => other,
    }
}

/// Rejected by hand: always rejected, and it stays so through later pings.
pub fn after_rejection(_current: Status) -> Status {
    Status::Rejected
}

/// A domain's block lifted: the mention returns to the status it had before the block, or, if
/// that was not recorded, to published when it was ever verified and to pending otherwise.
pub fn after_unblock(before_block: Option<Status>, ever_verified: bool) -> Status {
    before_block.unwrap_or(if ever_verified {
        Status::Verified
    } else {
        Status::Pending
    })
}

/// What a change of status tells the blogger's channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Published,
    Deleted,
    Held,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Published => "published",
            Event::Deleted => "deleted",
            Event::Held => "held",
        }
    }
}

/// What a status change sets off, besides the row itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    /// The notifications queued (when any channel is configured).
    pub events: &'static [Event],
    /// `Some(true)`: the mention is recorded as unpublished (`/api/deleted.json`);
    /// `Some(false)`: a record of it is dropped (published again); `None`: left alone.
    pub unpublished: Option<bool>,
    /// Whether what is published changed (feeds' version moves; their caches are stale).
    pub publishing_moved: bool,
}

/// What moving a mention from `from` to `to` sets off. Publishing is the line that matters:
/// crossing into `verified` publishes, crossing out of it unpublishes (a site build must drop
/// it); entering `held` asks the moderator — a published mention held again does both.
/// Changes between unpublished statuses set off nothing more.
pub fn change(from: Status, to: Status) -> Change {
    let (was, is) = (from == Status::Verified, to == Status::Verified);
    let held = to == Status::Held && from != Status::Held;
    Change {
        events: match (was, is, held) {
            (false, true, _) => &[Event::Published],
            (true, false, true) => &[Event::Deleted, Event::Held],
            (true, false, false) => &[Event::Deleted],
            (_, _, true) => &[Event::Held],
            _ => &[],
        },
        unpublished: match (was, is) {
            (false, true) => Some(false),
            (true, false) => Some(true),
            _ => None,
        },
        publishing_moved: was != is,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn a_moderators_decision_outlives_every_check() {
        for current in Status::ALL.iter().copied() {
            for hold_new in [false, true] {
                assert_eq!(
                    after_verification(current, Some(Moderation::Rejected), hold_new),
                    Rejected
                );
                assert_eq!(
                    after_verification(current, Some(Moderation::Blocked), hold_new),
                    Rejected
                );
                assert_eq!(
                    after_verification(current, Some(Moderation::Approved), hold_new),
                    Verified
                );
            }
        }
    }

    #[test]
    fn a_check_holds_new_mentions_only_when_moderation_says_so_and_keeps_what_was_decided() {
        assert_eq!(after_verification(Pending, None, false), Verified);
        assert_eq!(after_verification(Pending, None, true), Held);
        assert_eq!(
            after_verification(Held, None, false),
            Held,
            "held until approved"
        );
        assert_eq!(
            after_verification(Verified, None, true),
            Verified,
            "stays published"
        );
        assert_eq!(
            after_verification(Deleted, None, false),
            Verified,
            "a link put back"
        );
        assert_eq!(after_verification(Rejected, None, true), Held);
    }

    #[test]
    fn a_refusal_deletes_only_a_verified_mention_whose_link_is_gone() {
        assert_eq!(after_refusal(Verified, true, true), Deleted);
        assert_eq!(
            after_refusal(Verified, true, false),
            Verified,
            "too large: kept"
        );
        assert_eq!(after_refusal(Held, true, false), Held);
        assert_eq!(
            after_refusal(Pending, false, true),
            Rejected,
            "never verified"
        );
        assert_eq!(
            after_refusal(Rejected, true, true),
            Rejected,
            "stays rejected"
        );
    }

    #[test]
    fn approval_publishes_only_what_was_verified_and_rejection_always_rejects() {
        assert_eq!(after_approval(Held, true), Verified);
        assert_eq!(after_approval(Rejected, true), Verified);
        assert_eq!(after_approval(Rejected, false), Rejected);
        assert_eq!(after_approval(Pending, false), Pending);
        assert_eq!(after_approval(Deleted, true), Deleted);
        for current in Status::ALL.iter().copied() {
            assert_eq!(after_rejection(current), Rejected);
        }
    }

    #[test]
    fn unblocking_gives_back_what_the_block_took() {
        assert_eq!(after_unblock(Some(Held), true), Held);
        assert_eq!(after_unblock(Some(Pending), false), Pending);
        assert_eq!(after_unblock(None, true), Verified);
        assert_eq!(after_unblock(None, false), Pending);
    }

    #[test]
    fn publishing_and_unpublishing_are_the_changes_that_tell_anyone() {
        use Event as E;
        assert_eq!(change(Pending, Verified).events, [E::Published]);
        assert_eq!(change(Verified, Deleted).events, [E::Deleted]);
        assert_eq!(change(Verified, Rejected).events, [E::Deleted]);
        assert_eq!(change(Pending, Held).events, [E::Held]);
        assert_eq!(change(Verified, Held).events, [E::Deleted, E::Held]);
        assert!(change(Held, Rejected).events.is_empty());
        assert!(change(Pending, Rejected).events.is_empty());
        for s in Status::ALL.iter().copied() {
            assert!(change(s, s).events.is_empty(), "{s:?} to itself");
            assert!(!change(s, s).publishing_moved);
        }
        assert_eq!(change(Verified, Deleted).unpublished, Some(true));
        assert_eq!(change(Deleted, Verified).unpublished, Some(false));
        assert_eq!(change(Pending, Rejected).unpublished, None);
    }
}

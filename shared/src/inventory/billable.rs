//! The billable count: bill what Microsoft bills.
//!
//! The service bills every identity Microsoft bills the customer for: licensed, enabled member
//! accounts. A customer cannot carve out individual users (a service account with a licence is
//! billed like anyone else); what is excluded is excluded for a reason that holds for every
//! tenant, and each exclusion says which:
//!
//! | identity | billed | reason |
//! |---|---|---|
//! | guest (`userType` Guest, or an `#EXT#` UPN) | no | `guest` |
//! | room or equipment mailbox | no | `resource_mailbox`: needs no licence |
//! | shared mailbox without a licence | no | `shared_mailbox` |
//! | shared mailbox with a licence (over 50 GB, archive, ...) | **yes** | Microsoft bills that licence |
//! | disabled account (not a shared mailbox) | no | `disabled` |
//! | enabled member without a licence | no | `unlicensed` |
//! | enabled, licensed member (people and service accounts alike) | **yes** | |
//!
//! The checks run in that order, so each excluded identity has exactly one reason: the first
//! that applies. When the mailbox purpose is unknown (no `MailboxSettings.Read`), a shared
//! mailbox looks like a user; its account is normally disabled, so it is still excluded, as
//! `disabled`.

use serde::{Deserialize, Serialize};

/// `userType` as far as billing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserKind {
    /// A member of the tenant.
    Member,
    /// A guest (B2B).
    Guest,
}

/// `mailboxSettings.userPurpose`, when it could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailboxPurpose {
    /// A person's mailbox.
    User,
    /// A shared mailbox.
    Shared,
    /// A room.
    Room,
    /// Equipment.
    Equipment,
    /// A linked mailbox, or another purpose.
    Other,
    /// The user has no Exchange Online mailbox.
    None,
}

impl MailboxPurpose {
    /// From Graph's `userPurpose` (`user`, `shared`, `room`, `equipment`, `linked`, `others`).
    pub fn parse(s: &str) -> MailboxPurpose {
        match s.to_ascii_lowercase().as_str() {
            "user" => MailboxPurpose::User,
            "shared" => MailboxPurpose::Shared,
            "room" => MailboxPurpose::Room,
            "equipment" => MailboxPurpose::Equipment,
            _ => MailboxPurpose::Other,
        }
    }

    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxPurpose::User => "user",
            MailboxPurpose::Shared => "shared",
            MailboxPurpose::Room => "room",
            MailboxPurpose::Equipment => "equipment",
            MailboxPurpose::Other => "other",
            MailboxPurpose::None => "none",
        }
    }
}

/// What billing needs to know of an identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    /// Member or guest.
    pub kind: UserKind,
    /// `accountEnabled` (`None`: not returned, taken as enabled).
    pub enabled: Option<bool>,
    /// Whether at least one licence is assigned (`assignedLicenses` not empty).
    pub licensed: bool,
    /// The mailbox purpose, when known.
    pub mailbox: Option<MailboxPurpose>,
}

/// Why an identity is not billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// A guest: Microsoft bills guests through the host's licences (MAU), not per seat.
    Guest,
    /// A room or equipment mailbox: needs no licence.
    ResourceMailbox,
    /// A shared mailbox without a licence.
    SharedMailbox,
    /// A disabled account.
    Disabled,
    /// An enabled member without any licence.
    Unlicensed,
}

impl Exclusion {
    /// Every reason, in the order the rule checks them.
    pub const ALL: [Exclusion; 5] = [
        Exclusion::Guest,
        Exclusion::ResourceMailbox,
        Exclusion::SharedMailbox,
        Exclusion::Disabled,
        Exclusion::Unlicensed,
    ];

    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            Exclusion::Guest => "guest",
            Exclusion::ResourceMailbox => "resource_mailbox",
            Exclusion::SharedMailbox => "shared_mailbox",
            Exclusion::Disabled => "disabled",
            Exclusion::Unlicensed => "unlicensed",
        }
    }

    /// The reason in words, for operators and customers.
    pub fn explain(self) -> &'static str {
        match self {
            Exclusion::Guest => "guest account: Microsoft does not bill guests per seat",
            Exclusion::ResourceMailbox => "room or equipment mailbox: needs no licence",
            Exclusion::SharedMailbox => "shared mailbox without a licence",
            Exclusion::Disabled => "account disabled",
            Exclusion::Unlicensed => "no licence assigned",
        }
    }

    /// The summary tag of identities excluded for this reason.
    pub fn tag(self) -> String {
        format!("{EXCLUDED_PREFIX}{}", self.as_str())
    }
}

/// Tag of a billable identity in the users inventory.
pub const BILLABLE_TAG: &str = "billable";
/// Prefix of the tag of an excluded identity (`excluded:guest`, ...).
pub const EXCLUDED_PREFIX: &str = "excluded:";

/// Whether `id` is billed, and if not, why.
pub fn billable(id: &Identity) -> Result<(), Exclusion> {
    if id.kind == UserKind::Guest {
        return Err(Exclusion::Guest);
    }
    match id.mailbox {
        Some(MailboxPurpose::Room | MailboxPurpose::Equipment) => {
            return Err(Exclusion::ResourceMailbox);
        }
        Some(MailboxPurpose::Shared) => {
            // Microsoft bills a shared mailbox only when it holds a licence; the account
            // itself is normally disabled, so this is decided before `enabled`.
            return if id.licensed {
                Ok(())
            } else {
                Err(Exclusion::SharedMailbox)
            };
        }
        _ => {}
    }
    if id.enabled == Some(false) {
        return Err(Exclusion::Disabled);
    }
    if !id.licensed {
        return Err(Exclusion::Unlicensed);
    }
    Ok(())
}

/// The summary tag of `id`: [`BILLABLE_TAG`] or its exclusion's tag.
pub fn billing_tag(id: &Identity) -> String {
    match billable(id) {
        Ok(()) => BILLABLE_TAG.to_string(),
        Err(e) => e.tag(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(licensed: bool) -> Identity {
        Identity {
            kind: UserKind::Member,
            enabled: Some(true),
            licensed,
            mailbox: Some(MailboxPurpose::User),
        }
    }

    #[test]
    fn licensed_enabled_members_are_billed() {
        assert_eq!(billable(&member(true)), Ok(()));
        // A service account is a member like any other: no carve-out.
        let svc = Identity {
            mailbox: Some(MailboxPurpose::None),
            ..member(true)
        };
        assert_eq!(billable(&svc), Ok(()));
        // Mailbox purpose unknown (no MailboxSettings.Read): the licence decides.
        let unknown = Identity {
            mailbox: None,
            enabled: None,
            ..member(true)
        };
        assert_eq!(billable(&unknown), Ok(()));
    }

    #[test]
    fn each_exclusion_has_its_reason() {
        let guest = Identity {
            kind: UserKind::Guest,
            ..member(true)
        };
        assert_eq!(billable(&guest), Err(Exclusion::Guest), "licensed guest");
        let disabled = Identity {
            enabled: Some(false),
            ..member(true)
        };
        assert_eq!(billable(&disabled), Err(Exclusion::Disabled));
        assert_eq!(billable(&member(false)), Err(Exclusion::Unlicensed));
        for purpose in [MailboxPurpose::Room, MailboxPurpose::Equipment] {
            let room = Identity {
                mailbox: Some(purpose),
                ..member(true)
            };
            assert_eq!(
                billable(&room),
                Err(Exclusion::ResourceMailbox),
                "licensed {purpose:?}"
            );
        }
    }

    #[test]
    fn shared_mailboxes_are_billed_only_with_a_licence() {
        let shared = |licensed, enabled| Identity {
            kind: UserKind::Member,
            enabled: Some(enabled),
            licensed,
            mailbox: Some(MailboxPurpose::Shared),
        };
        assert_eq!(
            billable(&shared(false, false)),
            Err(Exclusion::SharedMailbox)
        );
        assert_eq!(
            billable(&shared(false, true)),
            Err(Exclusion::SharedMailbox)
        );
        assert_eq!(
            billable(&shared(true, false)),
            Ok(()),
            "licensed, disabled sign-in"
        );
        assert_eq!(billable(&shared(true, true)), Ok(()));
        // Without the mailbox purpose, an unlicensed disabled shared mailbox is still out.
        let unknown = Identity {
            mailbox: None,
            ..shared(false, false)
        };
        assert_eq!(billable(&unknown), Err(Exclusion::Disabled));
    }

    #[test]
    fn the_first_applicable_reason_wins() {
        let guest_disabled_unlicensed = Identity {
            kind: UserKind::Guest,
            enabled: Some(false),
            licensed: false,
            mailbox: None,
        };
        assert_eq!(billable(&guest_disabled_unlicensed), Err(Exclusion::Guest));
        let disabled_unlicensed = Identity {
            enabled: Some(false),
            ..member(false)
        };
        assert_eq!(billable(&disabled_unlicensed), Err(Exclusion::Disabled));
        assert_eq!(billing_tag(&member(false)), "excluded:unlicensed");
        assert_eq!(billing_tag(&member(true)), BILLABLE_TAG);
        let labels: Vec<&str> = Exclusion::ALL.iter().map(|e| e.as_str()).collect();
        let mut dedup = labels.clone();
        dedup.dedup();
        assert_eq!(labels, dedup);
    }
}

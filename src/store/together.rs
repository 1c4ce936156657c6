//! A group's verifications, and its candidates to queue, written together. On PostgreSQL
//! every statement is a round trip and a start of the executor, and one verification alone
//! takes six (its mention read and updated, its job ended, its decision logged, its addresses
//! recorded and looked up), one new ping three: the group commit writes them instead with one
//! statement of each kind for the whole group (the rows in `VALUES` lists), in the group's
//! transaction.
//!
//! Only the common case is written this way. Verified outcomes with anything else among them —
//! a job leased again or pinged again while it was checked, a mention twice, an address shared
//! with another mention of the same post (a conversation to merge) — are handed back, rolled
//! back, and written one outcome at a time by `mentions::apply`; a candidate whose pair was
//! seen before is queued by `enqueue_one`. Tests hold each way to the rows of the other, on
//! both engines.
//!
//! Lists go in runs of 1, 2, 4 … 32 rows ([`Piped::in_runs`]), so that each statement is one
//! of a handful of texts that the connection keeps prepared; and the statements that do not
//! wait for another's answer go to PostgreSQL together ([`Conn::pipeline`]): a group's
//! verifications are two round trips, its new pings one.

use super::Result;
use super::conversations::{SeenAt, addresses_recorded, seen_at};
use super::db::{Conn, Engine, Param, Piped, ValueRef};
use super::decisions::{Decision, DecisionLines};
use super::mentions::{VERIFIED_UPDATE_FROM_ROWS, verified_values};
use super::queue::{Candidate, Enqueued, Job, enqueue_one};
use crate::lifecycle::{self, Moderation};
use crate::model::{Extracted, Status, now_rfc3339};
use std::collections::{HashMap, HashSet};

/// One verified outcome of a group: what [`super::mentions::apply`] writes for
/// `Applied::Verified`.
#[derive(Clone, Copy)]
pub(super) struct VerifiedWrite<'a> {
    pub job: &'a Job,
    pub extracted: &'a Extracted,
    pub hold_new: bool,
    pub decision: &'a Decision,
}

/// Writes `writes` together and returns their statuses, in order; `None` when they must be
/// written one by one instead (the caller rolls back what this wrote). Two round trips on
/// PostgreSQL (see [`Conn::pipeline`]): the jobs ended and the statuses read, then everything
/// else.
pub(super) fn write_verified(
    c: &Conn,
    writes: &[VerifiedWrite<'_>],
) -> Result<Option<Vec<Status>>> {
    let ids: HashSet<i64> = writes.iter().map(|w| w.job.mention_id).collect();
    if ids.len() != writes.len() {
        return Ok(None);
    }
    let mut ended = 0;
    let mut now_at: HashMap<i64, (String, Option<String>, String)> = HashMap::new();
    c.pipeline(vec![
        end_jobs(writes).each(|_| {
            ended += 1;
            Ok(())
        }),
        statuses(writes).each(|r| {
            now_at.insert(r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?));
            Ok(())
        }),
    ])?;
    if ended != writes.len() {
        return Ok(None);
    }
    let Some(nexts) = next_statuses(writes, now_at) else {
        return Ok(None);
    };
    if write_outcomes(c, writes, &nexts)? == Merge::Needed {
        return Ok(None);
    }
    Ok(Some(nexts.into_iter().map(|(next, _)| next).collect()))
}

/// Whether a group written together holds a reaction also seen through another channel.
#[derive(PartialEq)]
enum Merge {
    Needed,
    NotNeeded,
}

/// Writes the verifications' mentions (with their `nexts`: status and post), decisions and the
/// addresses they were seen at, in one round trip; whether one of them shares an address with
/// another published or held mention of its post (to be merged, one by one: see
/// `conversations`).
fn write_outcomes(
    c: &Conn,
    writes: &[VerifiedWrite<'_>],
    nexts: &[(Status, String)],
) -> Result<Merge> {
    let now = now_rfc3339();
    let order: Vec<usize> = (0..writes.len()).collect();
    let update = Piped::in_runs(
        &order,
        "(CAST(? AS BIGINT), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, CAST(? AS time_text))",
        |rows| VERIFIED_UPDATE_FROM_ROWS.replace("{rows}", rows),
        |&i| {
            let w = &writes[i];
            verified_values(w.job, nexts[i].0.as_str(), w.extracted, w.decision, &now).to_vec()
        },
    );
    let decisions: Vec<&Decision> = writes.iter().map(|w| w.decision).collect();
    let decisions = DecisionLines::new(&decisions);
    // Only mentions that are, or wait to be, published are compared.
    let published: HashMap<i64, &str> = writes
        .iter()
        .zip(nexts)
        .filter(|(_, (next, _))| matches!(next, Status::Verified | Status::Held))
        .map(|(w, (_, target_key))| (w.job.mention_id, target_key.as_str()))
        .collect();
    let seen: Vec<(i64, SeenAt<'_>)> = writes
        .iter()
        .filter(|w| published.contains_key(&w.job.mention_id))
        .flat_map(|w| {
            seen_at(&w.job.source, w.extracted)
                .into_iter()
                .map(|at| (w.job.mention_id, at))
        })
        .collect();
    let keys: Vec<&str> = seen
        .iter()
        .map(|(_, at)| at.key.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    // Who is at each address: (mention, its post while published or held).
    let mut at_key: HashMap<String, Vec<(i64, String)>> = HashMap::new();
    c.pipeline(vec![
        update,
        decisions.insert(),
        addresses_recorded(&seen),
        who_is_at(&keys).each(|r| {
            if let Some(target_key) = r.get::<_, Option<String>>(2)? {
                at_key
                    .entry(r.get(0)?)
                    .or_default()
                    .push((r.get(1)?, target_key));
            }
            Ok(())
        }),
    ])?;
    let shares_an_address = seen.iter().any(|(id, at)| {
        at_key.get(&at.key).is_some_and(|there| {
            there.iter().any(|(other, target_key)| {
                other != id && Some(&target_key.as_str()) == published.get(id)
            })
        })
    });
    Ok(if shares_an_address {
        Merge::Needed
    } else {
        Merge::NotNeeded
    })
}

/// Ends the writes' jobs, a row back for each; fewer when one is no longer theirs as leased
/// (leased again, or pinged again while it was checked: `jobs::finish` knows what to do then).
fn end_jobs<'a>(writes: &'a [VerifiedWrite<'a>]) -> Piped<'a> {
    Piped::in_runs(
        writes,
        "(?, CAST(? AS BIGINT), CAST(? AS BIGINT))",
        |rows| {
            format!(
                "DELETE FROM jobs WHERE again = 0 AND (kind, subject, fence) IN (VALUES {rows})
                 RETURNING subject"
            )
        },
        |w| {
            let lease = w.job.lease();
            vec![
                ValueRef::Text(lease.kind.as_str()),
                ValueRef::Int(lease.subject),
                ValueRef::Int(lease.fence),
            ]
        },
    )
}

/// The writes' mentions as they are: id, status, moderation, post.
fn statuses<'a>(writes: &'a [VerifiedWrite<'a>]) -> Piped<'a> {
    Piped::in_runs(
        writes,
        "?",
        |rows| {
            format!("SELECT id, status, moderation, target_key FROM mentions WHERE id IN ({rows})")
        },
        |w| vec![ValueRef::Int(w.job.mention_id)],
    )
}

/// Each write's next status (by [`lifecycle::after_verification`]) and its mention's post,
/// from its mention as it is (`now_at`, by id); `None` when a mention is gone.
fn next_statuses(
    writes: &[VerifiedWrite<'_>],
    mut now_at: HashMap<i64, (String, Option<String>, String)>,
) -> Option<Vec<(Status, String)>> {
    writes
        .iter()
        .map(|w| {
            let (status, moderation, target_key) = now_at.remove(&w.job.mention_id)?;
            let next = lifecycle::after_verification(
                Status::parse(&status).unwrap_or(Status::Pending),
                Moderation::parse(moderation.as_deref()),
                w.hold_new,
            );
            Some((next, target_key))
        })
        .collect()
}

/// Who was seen at each of `keys`: (address, mention, the mention's post while it is
/// published or held).
fn who_is_at<'a>(keys: &'a [&'a str]) -> Piped<'a> {
    Piped::in_runs(
        keys,
        "?",
        |rows| {
            format!(
                "SELECT u.url_key, u.mention_id,
                        (SELECT m.target_key FROM mentions m
                         WHERE m.id = u.mention_id AND m.status IN ('verified', 'held'))
                 FROM mention_urls u WHERE u.url_key IN ({rows})"
            )
        },
        |key| vec![ValueRef::Text(key)],
    )
}

/// Queues `candidates` together: the pairs not seen before get their mentions and their jobs
/// (on PostgreSQL in one statement, a data-modifying `WITH`, which SQLite lacks: there the
/// jobs follow in another); a pair seen before (or twice in the group) is then queued by
/// [`enqueue_one`], as alone. Their answers, in order.
pub(super) fn enqueue(c: &Conn, candidates: &[&Candidate]) -> Result<Vec<Enqueued>> {
    let now = now_rfc3339();
    let tokens: Vec<String> = candidates
        .iter()
        .map(|_| super::new_status_token())
        .collect();
    let order: Vec<usize> = (0..candidates.len()).collect();
    let insert = |rows: &str| {
        format!(
            "INSERT INTO mentions (source, target, target_key, post_id, kind, hint, first_seen,
                                   updated_at, status_token, site)
             VALUES {rows} ON CONFLICT (source, target_key) DO NOTHING"
        )
    };
    // A mention made just now has no job yet (a job leaves with its mention).
    const JOBS: &str =
        "INSERT INTO jobs (kind, subject, next_try, attempts, conditional, arrival, site)
                        SELECT 'verify', id, first_seen, 0, 0, kind, site FROM";
    let mentions = Piped::in_runs(
        &order,
        "(?, ?, ?, CAST(? AS BIGINT), ?, ?, CAST(? AS time_text), CAST(? AS time_text), ?,
          COALESCE((SELECT site FROM posts WHERE id = CAST(? AS BIGINT)), ''))",
        |rows| match c.engine() {
            Engine::Postgres => format!(
                "WITH made AS ({} RETURNING status_token, id, first_seen, kind, site),
                      queued AS ({JOBS} made)
                 SELECT status_token, id FROM made",
                insert(rows)
            ),
            Engine::Sqlite => format!("{} RETURNING status_token, id", insert(rows)),
        },
        |&i| {
            let cand = candidates[i];
            let post_id = cand.post_id.map_or(ValueRef::Null, ValueRef::Int);
            vec![
                ValueRef::Text(&cand.source),
                ValueRef::Text(&cand.target),
                ValueRef::Text(&cand.target_key),
                post_id,
                ValueRef::Text(cand.kind.as_str()),
                cand.hint.value(),
                ValueRef::Text(&now),
                ValueRef::Text(&now),
                ValueRef::Text(&tokens[i]),
                post_id,
            ]
        },
    );
    let mut made: HashMap<String, i64> = HashMap::new();
    c.pipeline(vec![mentions.each(|r| {
        made.insert(r.get(0)?, r.get(1)?);
        Ok(())
    })])?;
    if c.engine() == Engine::Sqlite {
        let ids: Vec<i64> = made.values().copied().collect();
        c.pipeline(vec![Piped::in_runs(
            &ids,
            "CAST(? AS BIGINT)",
            |rows| format!("{JOBS} mentions WHERE id IN ({rows})"),
            |&id| vec![ValueRef::Int(id)],
        )])?;
    }
    candidates
        .iter()
        .zip(tokens)
        .map(|(cand, status_token)| match made.get(&status_token) {
            Some(&id) => Ok(Enqueued {
                id,
                status_token,
                moderation: None,
                new: true,
                already_queued: false,
                status: Status::Pending,
            }),
            None => enqueue_one(c, cand),
        })
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::model::{Author, Kind, MentionType, match_key};
    use crate::store::Store;
    use crate::store::mentions::{Applied, apply};
    use crate::store::queue::{Candidate, enqueue_one, lease_one_in};
    use crate::store::testing::{Sql, test_stores};

    const POST: &str = "https://blog.example/2024/post/";

    /// The page at `i` of a side's host (`a.example` or `b.example`: the same pages twice).
    fn page(side: &str, i: usize) -> (String, Extracted, bool) {
        let source = format!("https://{side}.example/{i}");
        let mut x = Extracted {
            mention_type: Some(MentionType::Reply),
            title: Some(format!("Reply {i}")),
            content_html: Some(format!("<p>Reply {i} to the post</p>")),
            ..Default::default()
        };
        match i {
            0 => x.mention_type = None,
            1 => {
                x.author = Author {
                    name: Some("Ann".into()),
                    url: Some(format!("https://{side}.example/ann")),
                    photo: Some(format!("https://{side}.example/ann.jpg")),
                };
                x.published = Some("2024-05-01T10:00:00Z".into());
                x.final_url = Some(format!("https://{side}.example/{i}/moved"));
                x.copies = vec![format!("https://{side}.social/@ann/{i}")];
            }
            _ => {}
        }
        (source, x, i == 2)
    }

    /// A webmention from `source` to the post.
    pub(in crate::store) fn candidate(source: &str) -> Candidate {
        Candidate {
            source: source.into(),
            target: POST.into(),
            target_key: match_key(POST).unwrap(),
            post_id: None,
            kind: Kind::Webmention,
            hint: None,
        }
    }

    pub(in crate::store) fn decision(source: &str) -> Decision {
        Decision {
            at: now_rfc3339(),
            source: source.into(),
            target: POST.into(),
            kind: "webmention".into(),
            outcome: "verified".into(),
            reason: "links to the post".into(),
        }
    }

    /// Queues the side's five pages and leases their jobs: 0 and 1 plain, 2 held on arrival, 3
    /// rejected by a moderator before, 4 verified before and checked again.
    pub(in crate::store) fn leased_side(store: &Store, side: &str) -> Vec<(Job, Extracted, bool)> {
        let sql = Sql::open(&store.location);
        (0..5)
            .map(|i| {
                let (source, x, hold_new) = page(side, i);
                let candidate = candidate(&source);
                let lease = |c: &mut Conn| {
                    let id = enqueue_one(c, &candidate)?.id;
                    Ok(lease_one_in(c, id, 60, "test")?.expect("its job is free"))
                };
                let mut job = store.write(lease).unwrap();
                if i == 3 {
                    sql.execute(
                        "UPDATE mentions SET moderation = 'rejected' WHERE source = ?1",
                        &[&source],
                    );
                }
                if i == 4 {
                    let verified = Applied::Verified {
                        extracted: Box::new(x.clone()),
                        hold_new,
                    };
                    store
                        .write(|c| apply(c, &job, &verified, &decision(&source)))
                        .unwrap();
                    // Verified a while ago, so that whether checking it again moves its
                    // times does not depend on the clock's second.
                    sql.execute(
                        "UPDATE mentions SET verified_at = '2020-01-01T00:00:00Z',
                                             updated_at = '2020-01-01T00:00:00Z'
                         WHERE source = ?1",
                        &[&source],
                    );
                    job = store.write(lease).unwrap();
                }
                (job, x, hold_new)
            })
            .collect()
    }

    /// A group of verified outcomes for `leased`, with their `decisions`.
    fn group<'a>(
        leased: &'a [(Job, Extracted, bool)],
        decisions: &'a [Decision],
    ) -> Vec<VerifiedWrite<'a>> {
        leased
            .iter()
            .zip(decisions)
            .map(|((job, x, hold_new), decision)| VerifiedWrite {
                job,
                extracted: x,
                hold_new: *hold_new,
                decision,
            })
            .collect()
    }

    fn decisions_for(leased: &[(Job, Extracted, bool)]) -> Vec<Decision> {
        leased
            .iter()
            .map(|(job, ..)| decision(&job.source))
            .collect()
    }

    /// What a side's writes left, its host's name taken out: the mentions, their addresses,
    /// the decisions logged and the jobs left.
    pub(in crate::store) fn written(store: &Store, side: &str) -> Vec<Vec<String>> {
        let sql = Sql::open(&store.location);
        let like = format!("https://{side}.%");
        let rows = |query: &str| -> Vec<Vec<String>> {
            sql.rows(&query.replace("{like}", &like))
                .into_iter()
                .map(|row| {
                    row.into_iter()
                        .map(|v| v.replace(&format!("{side}."), "HOST."))
                        .collect()
                })
                .collect()
        };
        [
            rows(
                "SELECT source, status, type, title, author_name, author_url, author_photo, published,
                        excerpt, content_html, final_url, reason, not_found_count,
                        verified_at IS NULL, verified_at = checked_at, updated_at = checked_at
                 FROM mentions WHERE source LIKE '{like}' ORDER BY source",
            ),
            rows(
                "SELECT m.source, u.url, u.url_key, u.role FROM mention_urls u
                 JOIN mentions m ON m.id = u.mention_id
                 WHERE m.source LIKE '{like}' ORDER BY m.source, u.url_key",
            ),
            rows(
                "SELECT source, target, kind, outcome, reason, site FROM decisions
                 WHERE source LIKE '{like}' ORDER BY source, id",
            ),
            rows(
                "SELECT m.source FROM jobs q JOIN mentions m ON m.id = q.subject
                 WHERE m.source LIKE '{like}' ORDER BY m.source",
            ),
        ]
        .concat()
    }

    #[test]
    fn a_group_with_a_mention_twice_a_shared_address_or_a_job_pinged_again_is_handed_back() {
        for (store, _keep) in test_stores("together_handed_back") {
            let leased = leased_side(&store, "a");
            let decisions = decisions_for(&leased);
            let all = group(&leased, &decisions);
            let handed_back = |writes: &[VerifiedWrite<'_>]| -> bool {
                store
                    .write(|c| {
                        let tx = c.transaction()?;
                        Ok(write_verified(&tx, writes)?.is_none()) // rolled back with `tx`
                    })
                    .unwrap()
            };
            assert!(!handed_back(&all[..2]), "two plain outcomes are written");
            assert!(handed_back(&[all[0], all[1], all[0]]), "a mention twice");
            // Another published mention of the post, from the address page 1 names as its copy.
            let copy = candidate("https://a.social/@ann/1");
            store
                .write(|c| {
                    let id = enqueue_one(c, &copy)?.id;
                    let job = lease_one_in(c, id, 60, "test")?.unwrap();
                    let verified = Applied::Verified {
                        extracted: Box::default(),
                        hold_new: false,
                    };
                    apply(c, &job, &verified, &decision(&copy.source))
                })
                .unwrap();
            assert!(handed_back(&all[..2]), "page 1 shares an address with it");
            assert!(!handed_back(&[all[0], all[2]]));
            // Pinged again while its job was leased: `jobs::finish` queues it again.
            store
                .write(|c| enqueue_one(c, &candidate(&leased[2].0.source)))
                .unwrap();
            assert!(handed_back(&[all[0], all[2]]), "a job pinged again");
            let sql = Sql::open(&store.location);
            let jobs_left = sql.query_i64(
                "SELECT COUNT(*) FROM jobs q JOIN mentions m ON m.id = q.subject
                 WHERE m.source LIKE 'https://a.example/%'",
                &[],
            );
            assert_eq!(jobs_left, 5, "what was handed back was rolled back");
        }
    }

    #[test]
    fn candidates_queued_together_are_answered_and_written_as_one_by_one() {
        for (store, _keep) in test_stores("together_enqueue") {
            // Pages 0 and 1 new, page 2 seen before (its job leased), page 0 twice.
            let sides: Vec<(Vec<Candidate>, Vec<Enqueued>)> = ["a", "b"]
                .into_iter()
                .map(|side| {
                    let seen = candidate(&format!("https://{side}.example/2"));
                    store
                        .write(|c| {
                            let id = enqueue_one(c, &seen)?.id;
                            lease_one_in(c, id, 60, "test")
                        })
                        .unwrap();
                    let candidates: Vec<Candidate> = [0, 1, 2, 0]
                        .into_iter()
                        .map(|i| {
                            let mut candidate = candidate(&format!("https://{side}.example/{i}"));
                            candidate.hint = (i == 1).then(|| r#"{"via":"test"}"#.to_string());
                            candidate
                        })
                        .collect();
                    (candidates, Vec::new())
                })
                .collect();
            let alone: Vec<Enqueued> = store
                .write(|c| sides[0].0.iter().map(|cand| enqueue_one(c, cand)).collect())
                .unwrap();
            let together: Vec<Enqueued> = store
                .write(|c| enqueue(c, &sides[1].0.iter().collect::<Vec<_>>()))
                .unwrap();
            let answer = |e: &Enqueued| (e.new, e.already_queued, e.status, e.moderation.clone());
            let answers = |all: &[Enqueued]| all.iter().map(answer).collect::<Vec<_>>();
            assert_eq!(answers(&together), answers(&alone));
            assert_eq!(
                answers(&alone)
                    .iter()
                    .map(|a| (a.0, a.1))
                    .collect::<Vec<_>>(),
                [(true, false), (true, false), (false, true), (false, true)]
            );
            assert_eq!(
                together[3].id, together[0].id,
                "the same pair, the same mention"
            );
            let sql = Sql::open(&store.location);
            let rows = |side: &str| -> Vec<Vec<String>> {
                sql.rows(&format!(
                    "SELECT m.source, m.target, m.target_key, m.kind, m.hint, m.status, m.site,
                            q.attempts, q.again, q.arrival, q.site, q.lease_owner IS NULL,
                            m.first_seen = m.updated_at, q.next_try = m.first_seen
                     FROM mentions m JOIN jobs q ON q.subject = m.id
                     WHERE m.source LIKE 'https://{side}.%' ORDER BY m.source"
                ))
                .into_iter()
                .map(|row| {
                    let host = format!("https://{side}.");
                    row.into_iter()
                        .map(|v| v.replace(&host, "https://HOST."))
                        .collect()
                })
                .collect()
            };
            let rows_alone = rows("a");
            assert_eq!(rows_alone.len(), 3);
            assert_eq!(rows("b"), rows_alone);
        }
    }

    #[test]
    fn verified_outcomes_written_together_leave_what_they_leave_written_one_by_one() {
        for (store, _keep) in test_stores("together") {
            let one_by_one = leased_side(&store, "a");
            let together = leased_side(&store, "b");
            let statuses_alone: Vec<Status> = store
                .write(|c| {
                    one_by_one
                        .iter()
                        .map(|(job, x, hold_new)| {
                            let verified = Applied::Verified {
                                extracted: Box::new(x.clone()),
                                hold_new: *hold_new,
                            };
                            Ok(apply(c, job, &verified, &decision(&job.source))?.unwrap())
                        })
                        .collect::<Result<_>>()
                })
                .unwrap();
            let decisions = decisions_for(&together);
            let statuses_together = store
                .write(|c| write_verified(c, &group(&together, &decisions)))
                .unwrap();
            assert_eq!(
                statuses_alone,
                [
                    Status::Verified,
                    Status::Verified,
                    Status::Held,
                    Status::Rejected,
                    Status::Verified
                ]
            );
            assert_eq!(statuses_together, Some(statuses_alone));
            let (alone, together) = (written(&store, "a"), written(&store, "b"));
            assert!(alone.len() > 15, "{alone:?}");
            assert_eq!(together, alone);
        }
    }
}

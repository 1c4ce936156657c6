//! Mastodon: replies, favourites and boosts of your own toots that link to a post, and with
//! `search = true` a full-text search; the token goes with every call to the instance.

use super::*;

pub(crate) fn status_evidence(status: &Value, mention_type: &str) -> RecordEvidence {
    let account = &status["account"];
    let html = str_of(status, "content").unwrap_or("");
    let base = Url::parse(str_of(status, "url").unwrap_or("https://mastodon.invalid/"))
        .unwrap_or_else(|_| Url::parse("https://mastodon.invalid/").expect("static URL"));
    let content = crate::verify::sanitize(html, &base);
    RecordEvidence {
        mention_type: Some(mention_type.into()),
        author_name: str_of(account, "display_name")
            .or_else(|| str_of(account, "acct"))
            .map(str::to_string),
        author_url: str_of(account, "url").map(str::to_string),
        author_photo: str_of(account, "avatar").map(str::to_string),
        published: str_of(status, "created_at").and_then(crate::verify::normalize_date),
        text: Some(crate::text::collapse(&crate::verify::html_text(html))),
        content_html: (!content.is_empty()).then_some(content),
        ..Default::default()
    }
}

/// Posts of ours a status links to (its HTML and its preview card).
pub(crate) fn status_links(status: &Value, posts: &HashMap<String, String>) -> Vec<String> {
    let base = Url::parse(str_of(status, "url").unwrap_or("https://mastodon.invalid/"))
        .unwrap_or_else(|_| Url::parse("https://mastodon.invalid/").expect("static URL"));
    let html = str_of(status, "content").unwrap_or("");
    let links = crate::verify::Page::parse(html, &base)
        .map(|page| page.link_urls())
        .unwrap_or_default();
    let mut linked: Vec<String> = links
        .iter()
        .map(|u| u.to_string())
        .chain(str_of(&status["card"], "url").map(str::to_string))
        .filter_map(|u| posts.get(&match_key(&u)?).cloned())
        .collect();
    linked.sort();
    linked.dedup();
    linked
}

pub(crate) async fn mastodon(
    ctx: &Context,
    src: &mut Source<'_>,
    posts: &[PostRef],
) -> Result<Vec<Hit>, SourceError> {
    let var = src
        .cfg
        .token_env
        .clone()
        .unwrap_or_else(|| "BACKFEED_MASTODON_TOKEN".into());
    let bearer = std::env::var(&var).ok().map(|t| format!("Bearer {t}"));
    let index: HashMap<String, String> = posts
        .iter()
        .filter_map(|p| Some((match_key(&p.url)?, p.url.clone())))
        .collect();
    let auth_hint = |e: SourceError| match e {
        SourceError::Auth(m) => SourceError::Auth(format!("{m}: check ${var}")),
        other => other,
    };
    let mut hits = Vec::new();
    if let Some(account) = src.cfg.account.clone() {
        let mut lookup = join(&src.api, "/api/v1/accounts/lookup");
        lookup.query_pairs_mut().append_pair("acct", &account);
        let me = api_json(ctx, src, lookup, bearer.as_deref(), None)
            .await
            .map_err(auth_hint)?;
        let id = str_of(&me, "id")
            .ok_or_else(|| SourceError::Other(format!("no Mastodon account {account}")))?
            .to_string();
        let mut list = join(&src.api, &format!("/api/v1/accounts/{id}/statuses"));
        list.query_pairs_mut()
            .append_pair("limit", "40")
            .append_pair("exclude_reblogs", "true");
        let toots = api_json(ctx, src, list, bearer.as_deref(), None)
            .await
            .map_err(auth_hint)?;
        for toot in toots.as_array().into_iter().flatten() {
            let linked = status_links(toot, &index);
            let (Some(toot_id), Some(toot_url)) = (str_of(toot, "id"), str_of(toot, "url")) else {
                continue;
            };
            if linked.is_empty() || src.budget < 3 {
                continue;
            }
            // Every call to the instance carries the token: limits then count per account,
            // and instances in authorized-fetch mode refuse anonymous calls.
            let mut about = Vec::with_capacity(3);
            for what in ["context", "favourited_by", "reblogged_by"] {
                let url = join(&src.api, &format!("/api/v1/statuses/{toot_id}/{what}"));
                about.push(
                    api_json(ctx, src, url, bearer.as_deref(), None)
                        .await
                        .map_err(auth_hint)?,
                );
            }
            let [context, favs, boosts] = <[Value; 3]>::try_from(about).expect("three answers");
            for post_url in &linked {
                for reply in context["descendants"].as_array().into_iter().flatten() {
                    if let Some(url) = str_of(reply, "url") {
                        hits.push(Hit {
                            source: url.to_string(),
                            post_url: post_url.clone(),
                            evidence: status_evidence(reply, "reply"),
                        });
                    }
                }
                for (accounts, what, kind) in [
                    (&favs, "favourited", "like"),
                    (&boosts, "reblogged", "repost"),
                ] {
                    for acct in accounts.as_array().into_iter().flatten() {
                        let Some(acct_id) = str_of(acct, "id") else {
                            continue;
                        };
                        let evidence = RecordEvidence {
                            mention_type: Some(kind.into()),
                            author_name: str_of(acct, "display_name")
                                .or_else(|| str_of(acct, "acct"))
                                .map(str::to_string),
                            author_url: str_of(acct, "url").map(str::to_string),
                            author_photo: str_of(acct, "avatar").map(str::to_string),
                            ..Default::default()
                        };
                        hits.push(Hit {
                            source: format!("{toot_url}#{what}-by-{acct_id}"),
                            post_url: post_url.clone(),
                            evidence,
                        });
                    }
                }
            }
        }
    }
    if src.cfg.search {
        let bearer = bearer
            .as_deref()
            .ok_or_else(|| SourceError::Auth(format!("search needs a token: set ${var}")))?;
        for post in posts {
            let mut url = join(&src.api, "/api/v2/search");
            url.query_pairs_mut()
                .append_pair("q", &post.url)
                .append_pair("type", "statuses")
                .append_pair("resolve", "false")
                .append_pair("limit", "40");
            let answer = api_json(ctx, src, url, Some(bearer), None)
                .await
                .map_err(auth_hint)?;
            for status in answer["statuses"].as_array().into_iter().flatten() {
                let Some(url) = str_of(status, "url") else {
                    continue;
                };
                if status_links(status, &index).contains(&post.url) {
                    hits.push(Hit {
                        source: url.to_string(),
                        post_url: post.url.clone(),
                        evidence: status_evidence(status, "mention"),
                    });
                }
            }
            mark_polled(ctx, src.name, post);
        }
    }
    Ok(hits)
}

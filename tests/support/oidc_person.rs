//! A person at a browser for oidc-provider's development pages (login, then consent):
//! follows redirects by hand, keeps cookies, submits each form. Shared by the tests that
//! log in at tests/peers/oidc.

use std::collections::BTreeMap;

/// A person at a browser: follows redirects by hand, keeps cookies, and submits each
/// form of oidc-provider's development pages (login, then consent).
pub struct Person {
    pub agent: ureq::Agent,
    cookies: BTreeMap<String, String>,
    origin: String,
    /// Cancel at the first interaction page instead of logging in.
    pub abort: bool,
}

impl Person {
    pub fn new(origin: &str) -> Person {
        Person {
            agent: ureq::Agent::config_builder()
                .max_redirects(0)
                .http_status_as_error(false)
                .build()
                .into(),
            cookies: BTreeMap::new(),
            origin: origin.to_owned(),
            abort: false,
        }
    }

    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http") {
            location.to_owned()
        } else {
            format!("{}{location}", self.origin)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn keep_cookies(&mut self, reply: &ureq::http::Response<ureq::Body>) {
        for header in reply.headers().get_all("set-cookie") {
            let text = header.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            if let Some((name, value)) = pair.split_once('=') {
                self.cookies
                    .insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    /// Does what a person does from `url` until the provider redirects to the loopback
    /// `redirect_prefix`, which is then opened, or shows a page without a form (the device
    /// flow's "you may close this page"); `form` answers every page's form.
    pub fn log_in(&mut self, url: &str, redirect_prefix: &str, form: &[(&str, &str)]) -> u16 {
        let mut next = (url.to_owned(), None::<Vec<(String, String)>>);
        let mut aborted = false;
        for _ in 0..20 {
            let (url, body) = next;
            if url.starts_with(redirect_prefix) {
                return self.agent.get(&url).call().unwrap().status().as_u16();
            }
            let cookie = self.cookie_header();
            let mut reply = match &body {
                None => self
                    .agent
                    .get(&url)
                    .header("cookie", &cookie)
                    .call()
                    .unwrap(),
                Some(fields) => self
                    .agent
                    .post(&url)
                    .header("cookie", &cookie)
                    .send_form(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                    .unwrap(),
            };
            self.keep_cookies(&reply);
            if let Some(location) = reply.headers().get("location") {
                next = (self.absolute(location.to_str().unwrap()), None);
                continue;
            }
            assert_eq!(reply.status(), 200, "{url}");
            let page = reply.body_mut().read_to_string().unwrap();
            // After a cancel, the provider's answer page is the end (it offers a new code
            // form, which a person who cancelled does not fill in).
            if !page.contains("<form") || aborted {
                return 200;
            }
            if self.abort && url.contains("/interaction/") {
                aborted = true;
                next = (format!("{url}/abort"), None);
                continue;
            }
            let (action, mut fields) = parse_form(&page);
            for (name, value) in form {
                fields.retain(|(n, _)| n != name);
                fields.push(((*name).to_owned(), (*value).to_owned()));
            }
            next = (self.absolute(&action), Some(fields));
        }
        panic!("no redirect to {redirect_prefix} after 20 steps");
    }
}

/// The first form's action and its hidden inputs.
fn parse_form(page: &str) -> (String, Vec<(String, String)>) {
    let attribute = |tag: &str, name: &str| -> Option<String> {
        let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
        let end = tag[start..].find('"')? + start;
        Some(tag[start..end].replace("&amp;", "&"))
    };
    let form_start = page.find("<form").expect("a form on the page");
    let form_tag = &page[form_start..page[form_start..].find('>').unwrap() + form_start];
    let action = attribute(form_tag, "action").unwrap();
    let mut fields = Vec::new();
    for input in page[form_start..].split("<input").skip(1) {
        let tag = &input[..input.find('>').unwrap_or(input.len())];
        if attribute(tag, "type").as_deref() == Some("hidden")
            && let (Some(name), Some(value)) = (attribute(tag, "name"), attribute(tag, "value"))
        {
            fields.push((name, value));
        }
    }
    (action, fields)
}

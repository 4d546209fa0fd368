//! Finding apps by what a person types in the catalog's search box.

use super::Catalog;
use super::types::App;

impl Catalog {
    /// Apps whose name, key or description holds every word of `query`, ignoring case. Apps
    /// found by name or key alone come before those that needed the description; each group
    /// stays in name order. A blank query gives every app.
    pub fn search(&self, query: &str) -> Vec<&App> {
        let words: Vec<String> = query.split_whitespace().map(str::to_lowercase).collect();
        if words.is_empty() {
            return self.apps.iter().collect();
        }
        let mut by_title = Vec::new();
        let mut by_description = Vec::new();
        for app in &self.apps {
            let title = format!("{} {}", app.name, app.key).to_lowercase();
            let description = app.description.to_lowercase();
            if words.iter().all(|word| title.contains(word.as_str())) {
                by_title.push(app);
            } else if words
                .iter()
                .all(|word| title.contains(word.as_str()) || description.contains(word.as_str()))
            {
                by_description.push(app);
            }
        }
        by_title.extend(by_description);
        by_title
    }
}

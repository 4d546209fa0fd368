//! Bounds how deeply a request's variables nest, with the same limit as the document's
//! brackets. The JSON reader already stops at 128 levels; this gives the caller the service's
//! own limit and a clear message. It walks with an explicit stack, never recursion.

use async_graphql::{Value, Variables};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the variables nest deeper than {limit} levels of lists and objects")]
pub struct VariablesTooDeep {
    pub limit: usize,
}

pub fn check(variables: &Variables, max_nesting: usize) -> Result<(), VariablesTooDeep> {
    let mut stack: Vec<(&Value, usize)> = variables.values().map(|value| (value, 1)).collect();
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::List(items) => Box::new(items.iter()),
            Value::Object(fields) => Box::new(fields.values()),
            _ => continue,
        };
        if depth > max_nesting {
            return Err(VariablesTooDeep { limit: max_nesting });
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested_list(levels: usize) -> Variables {
        let mut value = serde_json::json!(1);
        for _ in 0..levels {
            value = serde_json::json!([value]);
        }
        Variables::from_json(serde_json::json!({ "x": value }))
    }

    #[test]
    fn shallow_variables_pass_and_deep_ones_are_refused() {
        assert_eq!(check(&nested_list(5), 5), Ok(()));
        assert_eq!(check(&nested_list(6), 5), Err(VariablesTooDeep { limit: 5 }));
    }
}

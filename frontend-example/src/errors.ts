/** Turns what the API answers in `errors` into words for a person and the facts the page acts on. */
import type { CombinedError } from "urql";

export type FlowInUse = { id: string; name: string; status: string };

export function errorMessage(error: CombinedError): string {
  if (error.graphQLErrors.length > 0) return sentence(error.graphQLErrors.map((e) => e.message).join("; "));
  return `The server could not be reached (${error.networkError?.message ?? error.message}).`;
}

export function errorCode(error: CombinedError): string | undefined {
  return error.graphQLErrors[0]?.extensions?.code as string | undefined;
}

/** The form field a `BAD_USER_INPUT` names, such as `name` or `fields.api_key`. */
export function errorField(error: CombinedError): string | undefined {
  return error.graphQLErrors[0]?.extensions?.field as string | undefined;
}

/** The flows that would break, when a delete answers `CONNECTION_IN_USE`. */
export function flowsInUse(error: CombinedError): FlowInUse[] | null {
  if (errorCode(error) !== "CONNECTION_IN_USE") return null;
  return (error.graphQLErrors[0].extensions.flows as FlowInUse[] | undefined) ?? [];
}

function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

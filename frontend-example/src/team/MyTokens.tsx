import { useQuery } from "urql";
import { ErrorText } from "../ErrorText";
import { errorMessage } from "../errors";
import { MyTokensDocument } from "../gql/graphql";
import { Tokens } from "./Tokens";

/** The caller's own user tokens, which act as them in all their teams. */
export function MyTokens() {
  const [{ data, error }, reexecute] = useQuery({ query: MyTokensDocument });
  if (error) return <ErrorText message={errorMessage(error)} />;
  return (
    <Tokens
      title="Your tokens"
      tokens={data?.viewer.apiTokens ?? []}
      input={{ kind: "USER" }}
      onChanged={() => reexecute({ requestPolicy: "network-only" })}
    />
  );
}

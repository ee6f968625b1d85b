import { SessionExpired } from "./session";

/** RFC 9457 problem details, as every service answers an error. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: { field: string; message: string }[];
}

const FIELD_NAMES: Record<string, string> = {
  email: "Email",
  password: "Password",
  name: "Name",
  "shippingAddress.name": "Recipient",
  "shippingAddress.line1": "Address",
  "shippingAddress.city": "City",
  "shippingAddress.postalCode": "Postal code",
  "shippingAddress.country": "Country",
  phone: "Phone",
};

function fieldName(field: string): string {
  if (FIELD_NAMES[field]) return FIELD_NAMES[field];
  if (/^items\.\d+\.quantity$/.test(field)) return "Quantity";
  const last = field.split(".").pop() ?? field;
  return last.charAt(0).toUpperCase() + last.slice(1).replace(/([A-Z])/g, " $1").toLowerCase();
}

function sentence(text: string): string {
  const trimmed = text.trim().replace(/^Value error, /, "");
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** What went wrong, in plain words for the person at the screen. */
export function describeError(error: unknown): string {
  if (error instanceof SessionExpired) return error.message;
  if (error instanceof TypeError) return "The server cannot be reached. Check your connection and try again.";
  if (error instanceof Error) return error.message;
  const problem = (error ?? {}) as Problem;
  const code = problem.type?.split("/").pop();
  if (problem.errors?.length) {
    return problem.errors
      .map((e) => (e.field ? `${fieldName(e.field)}: ${sentence(e.message)}` : sentence(e.message)))
      .join(" ");
  }
  switch (code) {
    case "product-unavailable":
      return problem.detail ? sentence(problem.detail) : "A product in your cart is no longer available.";
    case "currency-mismatch":
      return "Products priced in different currencies cannot be ordered together.";
    case "rate-limited":
      return "Too many attempts. Please wait a moment and try again.";
    case "unauthorized":
      return problem.detail ? sentence(problem.detail) : "Please sign in again.";
    case "forbidden":
      return "You are not allowed to do that.";
    case "upstream-unavailable":
    case "upstream-timeout":
    case "inventory-unavailable":
    case "overloaded":
    case "pipeline-backlogged":
      return "The service is busy or unavailable right now. Please try again in a moment.";
    default:
      if (problem.detail) return sentence(problem.detail);
      if (problem.status && problem.status >= 500) return "Something went wrong on our side. Please try again.";
      return "The request could not be completed.";
  }
}

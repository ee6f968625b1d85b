import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { createServices, loadConfig, ServicesProvider } from "@realtimeorder/shared";
import { App } from "./App";
import "./index.css";

const config = await loadConfig();
const services = createServices(config, "rto.admin.session");

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ServicesProvider value={services}>
      <App />
    </ServicesProvider>
  </StrictMode>,
);

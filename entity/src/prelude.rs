//! Entity types under their table's name in the singular, for glob imports.
//!
//! `Task` here is the to-do entity. Code that also uses apalis should name it `task::Entity`.

pub use super::agent::Entity as Agent;
pub use super::conversation::Entity as Conversation;
pub use super::membership::Entity as Membership;
pub use super::message::Entity as Message;
pub use super::session::Entity as Session;
pub use super::task::Entity as Task;
pub use super::tenant::Entity as Tenant;
pub use super::tenant_plan::Entity as TenantPlan;
pub use super::usage_counter::Entity as UsageCounter;
pub use super::usage_record::Entity as UsageRecord;
pub use super::user::Entity as User;
